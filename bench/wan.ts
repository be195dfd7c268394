// Across the WAN: what a mount pays when the gateway is a round trip away.
// Linux's 9p client (cache=none) sends one request and waits for its reply
// before the next, so a workload costs its requests times the round trip.
// This replays what Linux 6.1 sent (test/fixtures/captures: linux61-read and
// linux61-write, recorded against diod, and linux61-devshare, a developer's
// session in a source tree recorded against edge9p) through edge9p bridge,
// one request at a time, with the bridge's round-trip model at 0 and at 20 ms
// (`--simulate-rtt`), and prints the requests that crossed the WebSocket,
// the files the workload touched and the requests per file, the time, and
// time / (requests x RTT): 1.00 is a workload that waits a full round trip
// on every request. A "with cache" row per stream runs the 20 ms replay
// through `edge9p bridge --cache` (docs/leases.md) and prints it beside
// issue 18's targets: at most 5 requests crossing per file of the workload,
// and at most 3x the time at 0 ms.

import net from "node:net";
import { pathToFileURL } from "node:url";
import { startBridge } from "../bridge/bridge.ts";
import { ERRNO, Framer, PLATFORM_MSIZE_CEILING, QT, decode, decodeDirents, encode } from "../protocol/index.ts";
import { type Record, readCapture } from "../test/node/support/capture.ts";
import { type LocalGateway, startLocalGateway } from "../test/support/local-gateway.ts";
import { table } from "./stats.ts";

const L = "9P2000.L";
export const WAN_RTT_MS = 20;

export interface WanRow {
  workload: string;
  /** Files the workload touched (see Workload.files). */
  files: number;
  rttMs: number;
  /** Through the bridge's lease cache (--cache). */
  cache: boolean;
  requests: number;
  secs: number;
  /** secs / (requests x RTT); null at 0 ms. */
  perRoundTrip: number | null;
  /** Rlerror replies by errno: what the recorded server answered, and what the replay got. */
  errors: { recorded: { [errno: string]: number }; replayed: { [errno: string]: number } };
  /** Replies of another type than the recorded reply to the same request (an error for a success, or back). */
  otherReplies: number;
}

/** The tree linux61-read was recorded against (test/workerd/mount.test.ts puts the same), under `dir`. */
async function readTree(gw: LocalGateway, dir: string): Promise<void> {
  const b = await gw.bucket();
  await b.put(`${dir}/hello.txt`, "hi there\n");
  await b.put(`${dir}/link`, "hello.txt", { customMetadata: { mode: String(0o120777) } });
  await b.put(`${dir}/dir/a200k.txt`, new Uint8Array(200_000).fill(7));
  for (let i = 1; i <= 40; i++) await b.put(`${dir}/dir/sub/e${i}`, `entry ${i}\n`);
}

interface Workload {
  capture: string;
  /**
   * What "files" counts, from the stream: "touched", the distinct paths of
   * files (not directories) walked to or created; "created", the distinct
   * paths created (devshare makes every file it works on, from its tarball,
   * and its renames would count some of them twice among the touched).
   */
  files: "touched" | "created";
  /** Puts what the recording's server had into `dir`. */
  setup(gw: LocalGateway, dir: string): Promise<void>;
}

const WORKLOADS: Workload[] = [
  { capture: "linux61-read", files: "touched", setup: readTree },
  // The recording started in an empty export; .keep makes the directory.
  { capture: "linux61-write", files: "touched", setup: async (gw, dir) => void (await (await gw.bucket()).put(`${dir}/.keep`, "")) },
  // Recorded at the root of an empty share: an empty directory (a marker
  // object, so that no entry shows in its listings) stands in for it.
  { capture: "linux61-devshare", files: "created", setup: async (gw, dir) => void (await (await gw.bucket()).put(`${dir}/`, "")) },
];

/** A recorded request and the reply the recorded server gave it (null if none was recorded). */
interface Exchange {
  t: Uint8Array;
  r: Uint8Array | null;
}

const tagOf = (m: Uint8Array) => m[5]! | (m[6]! << 8);
const RLERROR = 7;
const RREADDIR = 41;
const errnoOf = (m: Uint8Array) => new DataView(m.buffer, m.byteOffset + 7, 4).getUint32(0, true);

/**
 * Pairs each request with its reply: the i-th reply on a tag answers the
 * i-th request on it. Between directions a recording may be off by a
 * message, so a reply recorded before its request waits for it.
 */
export function exchanges(records: Record[]): Exchange[] {
  const out: Exchange[] = [];
  const pending = new Map<number, Exchange[]>();
  const early = new Map<number, Uint8Array[]>();
  for (const { dir, bytes } of records) {
    const tag = tagOf(bytes);
    if (dir === "T") {
      const e: Exchange = { t: bytes, r: early.get(tag)?.shift() ?? null };
      out.push(e);
      if (e.r === null) pending.set(tag, [...(pending.get(tag) ?? []), e]);
    } else {
      const e = pending.get(tag)?.shift();
      if (e) e.r = bytes;
      else early.set(tag, [...(early.get(tag) ?? []), bytes]);
    }
  }
  return out;
}

/**
 * The files a stream touched or created (Workload.files), by path: each fid's
 * path follows the attaches, whole walks and creates that gave it. Renames
 * are not followed, so a file walked to again under its new name counts
 * again among the touched; a workload renames few.
 */
export function filesOf(ex: Exchange[], kind: "touched" | "created"): number {
  const paths = new Map<number, string>();
  const touched = new Set<string>();
  const created = new Set<string>();
  const text = new TextDecoder();
  const join = (dir: string, name: Uint8Array) => `${dir}/${text.decode(name)}`;
  for (const { t, r } of ex) {
    if (r === null || r[4] === RLERROR) continue;
    const m = decode(t, L);
    const reply = decode(r, L);
    if (m.type === "Tattach") paths.set(m.fid, "");
    else if (m.type === "Twalk" && reply.type === "Rwalk" && reply.qids.length === m.wnames.length) {
      let p = paths.get(m.fid);
      if (p === undefined) continue;
      for (const w of m.wnames) p = text.decode(w) === ".." ? p.slice(0, Math.max(0, p.lastIndexOf("/"))) : join(p, w);
      paths.set(m.newfid, p);
      const last = reply.qids.at(-1);
      if (last && !(last.type & QT.DIR)) touched.add(p);
    } else if (m.type === "Tlcreate" || m.type === "Tsymlink" || m.type === "Tmknod") {
      const dir = paths.get(m.type === "Tmknod" ? m.dfid : m.fid);
      if (dir === undefined) continue;
      const p = join(dir, m.name);
      created.add(p);
      touched.add(p);
      // Tlcreate turns its fid into the new file's.
      if (m.type === "Tlcreate") paths.set(m.fid, p);
    } else if (m.type === "Tclunk" || m.type === "Tremove") paths.delete(m.fid);
  }
  return (kind === "created" ? created : touched).size;
}

function countErrors(replies: Iterable<Uint8Array | null>): { [errno: string]: number } {
  const names = new Map<number, string>(Object.entries(ERRNO).map(([k, v]) => [v, k]));
  const out: { [errno: string]: number } = {};
  for (const r of replies) {
    if (r === null || r[4] !== RLERROR) continue;
    const e = errnoOf(r);
    const k = names.get(e) ?? String(e);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * Sends the capture's requests through the bridge at `port`, each after the
 * reply to the one before (as the recorded client waited), with every
 * Tattach's aname pointed at `dir`. A Treaddir's offset is a cookie the
 * recorded server chose: it is mapped to the cookie this server gave the
 * same entry, so that a listing continues where the recorded one did
 * (edge9p's cookies count entries share-wide, and the shares differ).
 * Returns the time and the replies.
 */
async function replay(port: number, ex: Exchange[], capture: string, dir: string): Promise<{ secs: number; replies: Uint8Array[] }> {
  const sock = net.connect(port, "127.0.0.1");
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  let waiting: ((m: Uint8Array) => void) | null = null;
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  sock.on("data", (chunk: Buffer) => framer.push(chunk, (m) => waiting?.(m)));
  const cookies = new Map<bigint, bigint>();
  const replies: Uint8Array[] = [];
  const start = performance.now();
  try {
    for (const { t, r } of ex) {
      let bytes = t;
      if (bytes[4] === 104 /* Tattach */) {
        const m = decode(bytes, L);
        if (m.type === "Tattach") bytes = encode({ ...m, aname: dir }, L);
      } else if (bytes[4] === 40 /* Treaddir */) {
        const m = decode(bytes, L);
        const offset = m.type === "Treaddir" ? cookies.get(m.offset) : undefined;
        if (m.type === "Treaddir" && offset !== undefined) bytes = encode({ ...m, offset }, L);
      }
      const tag = tagOf(bytes);
      const reply = await new Promise<Uint8Array>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${capture}: no reply to tag ${tag} in 30 s`)), 30_000);
        waiting = (m) => {
          if (tagOf(m) !== tag) return;
          clearTimeout(timer);
          // The framer may hand back a view of a chunk: keep a copy.
          resolve(m.slice());
        };
        sock.write(bytes);
      });
      replies.push(reply);
      if (r !== null && r[4] === RREADDIR && reply[4] === RREADDIR) {
        const was = decodeDirents((decode(r, L) as { data: Uint8Array }).data);
        const got = decodeDirents((decode(reply, L) as { data: Uint8Array }).data);
        for (let i = 0; i < Math.min(was.length, got.length); i++) cookies.set(was[i]!.offset, got[i]!.offset);
      }
    }
  } finally {
    sock.destroy();
  }
  return { secs: (performance.now() - start) / 1000, replies };
}

/** Issue 18's targets for the cache at 20 ms. */
export const CACHE_TARGETS = { crossingPerFile: 5, timesZeroRtt: 3 };

/** A reply's type, and its errno for an error: what every run of one stream must agree on. */
const kindOf = (m: Uint8Array) => (m[4] === RLERROR ? `Rlerror ${errnoOf(m)}` : String(m[4]));

export async function wanBench(rtts = [0, WAN_RTT_MS], only?: string[]): Promise<WanRow[]> {
  const gw = await startLocalGateway();
  const rows: WanRow[] = [];
  try {
    const workloads = WORKLOADS.filter((w) => !only || only.includes(w.capture));
    // Every tree goes into the bucket before the first attach: the gateway
    // imports a directory's listing when it is first looked up and keeps it
    // until it is older than the revalidation time, so a directory put
    // under wan/ after a replay had listed wan/ would not be there (the
    // write replay's attach failed so, and with it every request after).
    const runs = [...rtts.map((rttMs) => ({ rttMs, cache: false })), { rttMs: WAN_RTT_MS, cache: true }];
    const dirOf = (capture: string, r: { rttMs: number; cache: boolean }) => `wan/${capture}-${r.rttMs}${r.cache ? "-cache" : ""}`;
    for (const w of workloads) for (const run of runs) await w.setup(gw, dirOf(w.capture, run));
    for (const w of workloads) {
      const ex = exchanges(readCapture(w.capture));
      const files = filesOf(ex, w.files);
      const recorded = countErrors(ex.map((e) => e.r));
      /** The first run's replies: every other run (the cache's above all) must get the same. */
      let first: string[] | null = null;
      for (const { rttMs, cache } of runs) {
        const dir = dirOf(w.capture, { rttMs, cache });
        const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), simulateRttMs: rttMs, cache });
        try {
          const { secs, replies } = await replay(bridge.port!, ex, w.capture, dir);
          const kinds = replies.map(kindOf);
          first ??= kinds;
          const at = kinds.findIndex((k, i) => k !== first![i]);
          if (at >= 0) throw new Error(`${w.capture} at ${rttMs} ms${cache ? " with the cache" : ""}: reply ${at} is ${kinds[at]}, the first run's was ${first[at]}`);
          const { requests } = bridge.stats();
          rows.push({
            workload: w.capture,
            files,
            rttMs,
            cache,
            requests,
            secs,
            perRoundTrip: rttMs ? secs / ((requests * rttMs) / 1000) : null,
            errors: { recorded, replayed: countErrors(replies) },
            otherReplies: ex.filter((e, i) => e.r !== null && e.r[4] !== replies[i]![4]).length,
          });
        } finally {
          await bridge.close();
        }
      }
    }
  } finally {
    await gw.stop();
  }
  return rows;
}

/**
 * A line for each replay whose errors differ much from the recording's (by
 * more than 2 and 5% for some errno), or with more than 1% of its replies of
 * another type than the recorded ones: its requests did not do what the
 * recorded ones did, and its figures are of another workload.
 */
export function wanWarnings(rows: WanRow[]): string[] {
  const show = (e: { [errno: string]: number }) =>
    Object.entries(e)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ") || "none";
  return rows.flatMap((r) => {
    const { recorded, replayed } = r.errors;
    const differs = [...new Set([...Object.keys(recorded), ...Object.keys(replayed)])].some((k) => {
      const a = recorded[k] ?? 0;
      const b = replayed[k] ?? 0;
      return Math.abs(a - b) > Math.max(2, 0.05 * a);
    });
    if (!differs && r.otherReplies <= 0.01 * r.requests) return [];
    return [
      `warning: ${r.workload} at ${r.rttMs} ms${r.cache ? " with the cache" : ""}: Rlerror recorded ${show(recorded)}; replayed ${show(replayed)}; ${r.otherReplies} replies of another type than recorded`,
    ];
  });
}

export function wanTable(rows: WanRow[]): string {
  const zero = (w: string) => rows.find((r) => r.workload === w && r.rttMs === 0 && !r.cache);
  const t = table(
    [
      "workload (Linux 6.1, cache=none)",
      "bridge",
      "files",
      "RTT ms",
      "requests over the WebSocket",
      `requests per file (target <= ${CACHE_TARGETS.crossingPerFile} with the cache)`,
      "time s",
      `x the 0 ms time (target <= ${CACHE_TARGETS.timesZeroRtt} with the cache)`,
      "time / (requests x RTT)",
    ],
    rows.map((r) => {
      const z = zero(r.workload);
      return [
        r.workload,
        r.cache ? "with cache" : "plain",
        r.files,
        r.rttMs,
        r.requests,
        (r.requests / r.files).toFixed(1),
        r.secs.toFixed(2),
        z && r.rttMs ? (r.secs / z.secs).toFixed(1) : "-",
        r.perRoundTrip === null ? "-" : r.perRoundTrip.toFixed(2),
      ];
    }),
  );
  const warnings = wanWarnings(rows);
  return warnings.length ? `${t}\n\n${warnings.join("\n")}` : t;
}

// `npx tsx bench/wan.ts [RTT_MS,...] [CAPTURE...]`: this section alone (all
// workloads at 0 and 20 ms when given nothing).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [rtts, ...only] = process.argv.slice(2);
  console.log(wanTable(await wanBench(rtts ? rtts.split(",").map(Number) : undefined, only.length ? only : undefined)));
}
