// Progress of a copy: on a terminal one line redrawn in place (a bar, bytes,
// rate, time left), at most ten times a second; otherwise (a pipe, a log,
// CI) one plain line per file and a summary, which a script can read.

interface Out {
  isTTY?: boolean;
  columns?: number;
  write(s: string): boolean;
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export class Progress {
  /** The bytes to copy; null when they are learnt as the files are read (the bar then counts files). */
  private total: number | null = 0;
  private files = 0;
  private bytes = 0;
  private filesDone = 0;
  private started = 0;
  private drawn = 0;

  constructor(private readonly out: Out) {}

  start(totalBytes: number | null, files: number): void {
    this.total = totalBytes;
    this.files = files;
    this.started = performance.now();
  }

  add(n: number): void {
    this.bytes += n;
    if (this.out.isTTY && performance.now() - this.drawn > 100) this.draw();
  }

  file(name: string): void {
    this.filesDone++;
    if (!this.out.isTTY) this.out.write(`copied ${name}\n`);
  }

  private draw(): void {
    this.drawn = performance.now();
    const secs = (this.drawn - this.started) / 1000;
    const rate = secs > 0 ? this.bytes / secs : 0;
    const frac = this.total === null ? (this.files > 0 ? this.filesDone / this.files : 1) : this.total > 0 ? Math.min(1, this.bytes / this.total) : 1;
    const left = this.total === null ? (frac > 0 ? (secs * (1 - frac)) / frac : 0) : rate > 0 ? Math.max(0, (this.total - this.bytes) / rate) : 0;
    const width = 20;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
    const done = this.total === null ? mb(this.bytes) : `${(this.bytes / 1e6).toFixed(1)}/${mb(this.total)}`;
    // Fits 80 columns; cut to the terminal's width when narrower.
    const line = `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${done} ${mb(rate)}/s ${left.toFixed(0)} s left ${this.filesDone}/${this.files} files`;
    this.out.write(`\r${line.slice(0, (this.out.columns ?? 100) - 1)}\x1b[K`);
  }

  done(): void {
    const secs = (performance.now() - this.started) / 1000;
    if (this.out.isTTY) {
      this.draw();
      this.out.write("\n");
    } else {
      this.out.write(`${this.filesDone} files, ${this.bytes} bytes in ${secs.toFixed(1)} s\n`);
    }
  }
}
