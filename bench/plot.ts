// bench/throughput.svg: throughput against msize, one line per case, the raw
// limits as their own (dashed) lines. Plain SVG, no dependencies: it opens in
// any browser and diffs as text.

export interface Series {
  label: string;
  /** [msize, MB/s] */
  points: [number, number][];
  dashed?: boolean;
  /** Index into the palette: a case and its raw limit share a colour. */
  color?: number;
}

const W = 760;
const H = 440;
const M = { left: 70, right: 230, top: 40, bottom: 60 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function sizeLabel(n: number): string {
  return n >= 1 << 20 ? `${n / (1 << 20)} MiB` : `${n / 1024} KiB`;
}

/** A "nice" step for about `n` ticks over [0, max]. */
function step(max: number, n = 6): number {
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

export function throughputSvg(title: string, series: Series[]): string {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ymaxData = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const ystep = step(ymaxData);
  const ymax = Math.ceil(ymaxData / ystep) * ystep;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const lx = (v: number) => Math.log2(v);
  const [x0, x1] = [lx(xs[0]!), lx(xs[xs.length - 1]!)];
  const X = (v: number) => M.left + (x1 === x0 ? pw / 2 : ((lx(v) - x0) / (x1 - x0)) * pw);
  const Y = (v: number) => M.top + ph - (v / ymax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`);
  // Grid and y ticks.
  for (let v = 0; v <= ymax + 1e-9; v += ystep) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 8}" y="${Y(v) + 4}" text-anchor="end">${+v.toFixed(3)}</text>`);
  }
  for (const v of xs) {
    out.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${X(v)}" y="${M.top + ph + 18}" text-anchor="middle">${sizeLabel(v)}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="black"/>`);
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="black"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 18}" text-anchor="middle">msize (log scale)</text>`);
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">throughput (MB/s)</text>`);
  series.forEach((s, i) => {
    const color = COLORS[(s.color ?? i) % COLORS.length]!;
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    const d = pts.map(([x, y], j) => `${j ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ` stroke-dasharray="6 4"` : ""}/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const ly = M.top + 10 + i * 20;
    const lx0 = M.left + pw + 20;
    out.push(`<line x1="${lx0}" x2="${lx0 + 28}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ` stroke-dasharray="6 4"` : ""}/>`);
    out.push(`<text x="${lx0 + 34}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
