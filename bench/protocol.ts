// Protocol-core benchmark: codec throughput next to a raw copy of the same
// bytes, and bytes allocated per small reply at small and huge msize.
//
// Run with --expose-gc and a large young generation (bench/run.ts does), so
// that no garbage collection runs while allocations are counted.

import { PerformanceObserver } from "node:perf_hooks";
import {
  type MessageInit,
  allocRread,
  decode,
  encode,
  errorReply,
  negotiate,
  readCount,
} from "../protocol/index.ts";
import { median, rate } from "./stats.ts";

const L = "9P2000.L" as const;
const qid = (path: bigint) => ({ type: 0, version: 1, path });

function rgetattr(tag: number): MessageInit {
  return {
    type: "Rgetattr",
    tag,
    valid: 0x17ffn,
    qid: qid(42n),
    mode: 0o100644,
    uid: 1000,
    gid: 1000,
    nlink: 1n,
    rdev: 0n,
    size: 123456n,
    blksize: 1n << 20n,
    blocks: 242n,
    atime_sec: 1n,
    atime_nsec: 0n,
    mtime_sec: 2n,
    mtime_nsec: 0n,
    ctime_sec: 3n,
    ctime_nsec: 0n,
    btime_sec: 0n,
    btime_nsec: 0n,
    gen: 0n,
    data_version: 7n,
  };
}

export interface CodecRow {
  message: string;
  bytes: number;
  msgsPerSec: number;
  rawCopiesPerSec: number;
}

/** encode + decode per second for each message; raw = allocate + copy the same bytes. */
export function codecThroughput(runs = 5): CodecRow[] {
  const mib = new Uint8Array(1 << 20).fill(7);
  const kib4 = mib.subarray(0, 4096);
  const cases: [string, MessageInit][] = [
    ["Rgetattr", rgetattr(1)],
    [
      "Rwalk(16)",
      { type: "Rwalk", tag: 1, qids: Array.from({ length: 16 }, (_, i) => qid(BigInt(i))) },
    ],
    ["Rread 4 KiB", { type: "Rread", tag: 1, data: kib4 }],
    ["Rread 1 MiB", { type: "Rread", tag: 1, data: mib }],
    ["Twrite 1 MiB", { type: "Twrite", tag: 1, fid: 3, offset: 0n, data: mib }],
  ];
  return cases.map(([message, m]) => {
    const size = encode(m, L).byteLength;
    const src = new Uint8Array(size);
    const codec: number[] = [];
    const raw: number[] = [];
    // Alternate the pair so that machine noise hits both alike.
    for (let i = 0; i < runs; i++) {
      codec.push(rate(() => decode(encode(m, L), L)));
      raw.push(rate(() => new Uint8Array(size).set(src)));
    }
    return { message, bytes: size, msgsPerSec: median(codec), rawCopiesPerSec: median(raw) };
  });
}

/** The small replies a session sends most, built as the session builds them. */
function smallReplies(msize: number): (tag: number) => unknown[] {
  return (tag) => [
    encode(rgetattr(tag), L),
    encode(errorReply(L, tag, 2), L),
    encode({ type: "Rwalk", tag, qids: [qid(1n), qid(2n)] }, L),
    encode({ type: "Rclunk", tag }, L),
    // A zero-length Rread at this msize: sized by count, never by msize.
    allocRread(tag, readCount(0, msize)).finish(0),
  ];
}

export interface AllocRow {
  msize: number;
  bytesPerReply: number;
  gcs: number;
}

/**
 * Bytes allocated per small reply (JS heap + ArrayBuffer backing stores),
 * with every reply kept alive so nothing is freed while counting.
 */
export function bytesPerSmallReply(msize: number, n = 20000): AllocRow {
  const g = globalThis as { gc?: () => void };
  if (!g.gc) throw new Error("run with --expose-gc (npm run bench does)");
  const neg = negotiate(msize, L, { cap: msize });
  if (!neg.ok) throw new Error(neg.reason);
  const build = smallReplies(neg.msize);
  // Warm up until the optimising compiler has settled, so both msizes are
  // measured on the same code.
  for (let i = 0; i < 50000; i++) build(i & 0xfffe);
  const keep: unknown[][] = new Array(n).fill(null);
  let gcs = 0;
  const obs = new PerformanceObserver((l) => (gcs += l.getEntries().length));
  g.gc();
  const before = process.memoryUsage();
  obs.observe({ entryTypes: ["gc"] });
  for (let i = 0; i < n; i++) keep[i] = build(i & 0xfffe);
  const after = process.memoryUsage();
  gcs += obs.takeRecords().length;
  obs.disconnect();
  const bytes = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  const perReply = bytes / (n * keep[0]!.length);
  return { msize, bytesPerReply: perReply, gcs };
}
