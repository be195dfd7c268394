// Fuzzing through real sessions: over 100,000 random and mutated messages
// (valid frames with random or broken fields, bad frames, huge counts, fids
// never attached, flushes of unknown tags, requests before Tversion) sent
// over several sockets to a real gateway (`wrangler dev`), while one
// well-behaved session writes and reads back a file throughout.
//
// The contract (docs/security.md, "Bad input"): every well-framed message gets a reply
// (an R-message or Rlerror/Rerror on its tag), or its socket is closed with
// a documented code; the gateway never fails internally (1011), keeps
// serving, and the well-behaved session sees no error and correct data.

import fc from "fast-check";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DIALECTS,
  type Dialect,
  type Message,
  type MessageInit,
  NOTAG,
  SPECS,
  type Client,
  NOFID,
  clientOverWebSocket,
  decode,
  encode,
} from "../../protocol/index.ts";
import { type LocalGateway, OPERATOR_AUTH, startLocalGateway } from "../support/local-gateway.ts";
import { messageArb } from "./support/arbitrary.ts";

const TOTAL = 100_000;
const SOCKETS = 4;
const BURST = 24;
/** Codes the gateway documents for closing a session on bad input (worker/close-codes.ts). */
const DOCUMENTED = new Set([1002, 1003, 1009, 4000]);
const enc = new TextEncoder();

let gw: LocalGateway;
beforeAll(async () => {
  gw = await startLocalGateway();
});
afterAll(async () => {
  await gw?.stop();
});

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)]! };
}
type Rng = ReturnType<typeof prng>;

const NAMES = ["a", "b", "c", "d.txt", ".", "..", "", "x/y", "nul\0", "n".repeat(300), "caf\xe9"];
const FID_FIELDS = new Set(["fid", "newfid", "dfid", "dirfid", "olddirfid", "newdirfid"]);

/** Random messages of a dialect, with fids and names mostly from small sets so they reach real files. */
function generator(d: Dialect, seed: number) {
  const specs = SPECS.filter((s) => s.dialects.includes(d) && s.name.startsWith("T"));
  const arb = fc.constantFrom(...specs).chain((s) => messageArb(s, d));
  let pool: MessageInit[] = [];
  let round = 0;
  return (rng: Rng): MessageInit => {
    if (pool.length === 0) pool = fc.sample(arb, { numRuns: 2000, seed: seed + round++ });
    const m = pool.pop()! as Record<string, unknown>;
    for (const k of Object.keys(m)) {
      if (FID_FIELDS.has(k) && rng.next() < 0.85) m[k] = rng.int(8);
      if ((k === "name" || k === "oldname" || k === "newname") && rng.next() < 0.8) m[k] = rng.pick(NAMES);
      if (k === "wnames" && rng.next() < 0.8) m[k] = Array.from({ length: rng.int(4) }, () => rng.pick(NAMES));
      if (k === "afid" && rng.next() < 0.8) m[k] = NOFID;
      if (k === "offset" && rng.next() < 0.7) m[k] = BigInt(rng.int(1 << 20));
      if (k === "count" && rng.next() < 0.5) m[k] = rng.pick([0, 1, 4096, 0x7fffffff, 0xffffffff]);
    }
    if (m.type === "Tversion" && rng.next() < 0.9) m.version = d;
    if (m.type === "Tflush" && rng.next() < 0.5) m.oldtag = rng.int(0x10000);
    return m as unknown as MessageInit;
  };
}

type Mutation = "none" | "flip" | "truncate" | "extend" | "huge" | "type" | "badsize" | "runt" | "text";

function setU32(b: Uint8Array, at: number, v: number) {
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);
}

/** A mutation of a frame: the first six keep the frame well-formed (size right, tag kept). */
function mutate(frame: Uint8Array, rng: Rng, keep: boolean): { bytes: Uint8Array | string; kind: Mutation; framed: boolean } {
  const r = keep ? Math.min(rng.next(), 0.44) : rng.next();
  const copy = () => new Uint8Array(frame);
  if (r < 0.45) return { bytes: frame, kind: "none", framed: true };
  if (r < 0.6 && frame.byteLength > 7) {
    const b = copy();
    for (let i = 0, n = 1 + rng.int(3); i < n; i++) b[7 + rng.int(b.byteLength - 7)] = rng.int(256);
    return { bytes: b, kind: "flip", framed: true };
  }
  if (r < 0.7 && frame.byteLength > 7) {
    const b = copy().slice(0, 7 + rng.int(frame.byteLength - 7));
    setU32(b, 0, b.byteLength);
    return { bytes: b, kind: "truncate", framed: true };
  }
  if (r < 0.78) {
    const b = new Uint8Array(frame.byteLength + 1 + rng.int(8));
    b.set(frame);
    setU32(b, 0, b.byteLength);
    return { bytes: b, kind: "extend", framed: true };
  }
  if (r < 0.88 && frame.byteLength >= 11) {
    const b = copy();
    setU32(b, 7 + rng.int(b.byteLength - 10), rng.pick([0xffffffff, 0x7fffffff, 0x10000, 17]));
    return { bytes: b, kind: "huge", framed: true };
  }
  if (r < 0.99) {
    // Any type but Tversion and Tflush, whose effect on other requests the tally could not follow.
    const b = copy();
    do b[4] = rng.int(256);
    while (b[4] === 100 || b[4] === 108);
    return { bytes: b, kind: "type", framed: true };
  }
  // Bad frames: the session must end with a documented code.
  const which = rng.int(3);
  if (which === 0) {
    const b = copy();
    setU32(b, 0, b.byteLength + 1 + rng.int(100));
    return { bytes: b, kind: "badsize", framed: false };
  }
  if (which === 1) return { bytes: frame.slice(0, rng.int(7)), kind: "runt", framed: false };
  return { bytes: "Tversion", kind: "text", framed: false };
}

interface Tally {
  sent: number;
  replies: number;
  errors: number;
  flushed: number;
  locksFlushed: number;
  closedWith: Map<number, number>;
  cutByClose: number;
  unanswered: string[];
  mutations: Map<Mutation, number>;
  sockets: number;
}

function bump<K>(m: Map<K, number>, k: K, n = 1) {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** One fuzzing socket's life: optionally negotiate, then bursts until it is closed or `budget` runs out. */
async function fuzzSocket(rng: Rng, gen: (rng: Rng) => MessageInit, d: Dialect, budget: () => boolean, t: Tally) {
  const ws = new WebSocket(gw.wsUrl(), ["9p"], { perMessageDeflate: false, maxPayload: 64 << 20 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  t.sockets++;
  const pending = new Map<number, string>();
  const flushes = new Map<number, number>();
  let closed: number | null = null;
  let wake: () => void = () => {};
  // The dialect the gateway answers in: whatever the last Tversion negotiated.
  let dialect: Dialect = d;
  const decodeReply = (b: Uint8Array): Message => {
    for (const x of [dialect, ...DIALECTS]) {
      try {
        return decode(b, x);
      } catch {
        // not this dialect's message
      }
    }
    throw new Error(`the gateway sent an undecodable message: ${Buffer.from(b.subarray(0, 32)).toString("hex")}`);
  };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) throw new Error("the gateway sent a text message");
    const m = decodeReply(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (m.type === "Rversion") {
      const v = typeof m.version === "string" ? m.version : new TextDecoder().decode(m.version);
      if ((DIALECTS as readonly string[]).includes(v)) dialect = v as Dialect;
    }
    if (!m.type.startsWith("R")) throw new Error(`the gateway sent ${m.type}`);
    if (!pending.has(m.tag)) throw new Error(`a reply on tag ${m.tag}, which has no request in flight (${m.type})`);
    pending.delete(m.tag);
    if (m.type === "Rlerror" || m.type === "Rerror") t.errors++;
    else t.replies++;
    if (m.type === "Rflush") {
      const old = flushes.get(m.tag);
      if (old !== undefined && pending.delete(old)) t.flushed++;
    }
    flushes.delete(m.tag);
    if (pending.size === 0) wake();
  });
  ws.on("close", (code: number) => {
    closed = code;
    bump(t.closedWith, code);
    t.cutByClose += pending.size;
    pending.clear();
    wake();
  });
  const settle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (pending.size === 0 || closed !== null) return resolve();
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const send = (m: MessageInit) => {
    const bytes = encode(m, d);
    ws.send(bytes);
    return bytes;
  };

  let tag = 1;
  const nextTag = () => {
    do tag = (tag + 1) & 0xffff;
    while (tag === NOTAG || pending.has(tag) || flushes.has(tag));
    return tag;
  };
  // Most sockets negotiate and attach; some send their first request without Tversion.
  if (rng.next() < 0.95) {
    pending.set(NOTAG, "Tversion");
    send({ type: "Tversion", tag: NOTAG, msize: rng.pick([8192, 65536, 1 << 20]), version: d } as MessageInit);
    t.sent++;
    await settle(5000);
    const at = nextTag();
    pending.set(at, "Tattach");
    send({ type: "Tattach", tag: at, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 } as MessageInit);
    t.sent++;
    await settle(5000);
  }
  while (closed === null && budget()) {
    for (let i = 0; i < BURST && closed === null && budget(); i++) {
      const m = gen(rng);
      if (m.type === "Tversion") {
        // Tversion aborts what is in flight (intro(5)): send it alone.
        await settle(5000);
        if (pending.size) break;
      }
      // Half the flushes aim at a request in flight.
      if (m.type === "Tflush" && pending.size && rng.next() < 0.5) (m as { oldtag: number }).oldtag = rng.pick([...pending.keys()]);
      const mt = m.type === "Tversion" ? NOTAG : nextTag();
      (m as { tag: number }).tag = mt;
      // Tversion and Tflush change what else is answered: they go intact (or as bad frames).
      const keep = (m.type === "Tversion" || m.type === "Tflush") && rng.next() < 0.95;
      const { bytes, kind, framed } = mutate(encode(m, d), rng, keep);
      bump(t.mutations, kind);
      t.sent++;
      if (t.sent % 10_000 === 0) process.stderr.write(`fuzz: ${t.sent} sent, ${t.unanswered.length} unanswered\n`);
      if (framed) pending.set(mt, `${m.type}/${kind}`);
      if (m.type === "Tflush" && kind === "none") {
        const old = (m as { oldtag: number }).oldtag;
        flushes.set(mt, pending.has(old) && old !== mt ? old : -1);
      }
      ws.send(bytes, { binary: typeof bytes !== "string" });
      if (!framed) break; // the socket is expected to close
      if (m.type === "Tversion") await settle(5000);
    }
    await settle(2000);
    if (closed === null && pending.size > 0) {
      // Blocking locks wait for a lock another fuzzing socket holds: a real client flushes them.
      for (const [ptag, what] of [...pending]) {
        if (!what.startsWith("Tlock")) continue;
        const ft = nextTag();
        pending.set(ft, "Tflush");
        flushes.set(ft, ptag);
        send({ type: "Tflush", tag: ft, oldtag: ptag } as MessageInit);
        t.locksFlushed++;
      }
      await settle(5000);
      for (const what of pending.values()) t.unanswered.push(what);
      pending.clear();
    }
  }
  if (closed === null) ws.close(1000);
}

/** The well-behaved session: random writes into its own file, each read back against a model. */
async function wellBehaved(stop: () => boolean): Promise<{ ops: number; bytes: number }> {
  const ws = new WebSocket(gw.wsUrl(), ["9p"], { perMessageDeflate: false, maxPayload: 64 << 20 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const c: Client = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await c.version(65536);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  const dir = "well-behaved-session";
  await c.request({ type: "Tmkdir", dfid: 0, name: enc.encode(dir), mode: 0o755, gid: 0 });
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [enc.encode(dir)] });
  await c.request({ type: "Tlcreate", fid, name: enc.encode("data.bin"), flags: 2, mode: 0o644, gid: 0 });
  const SIZE = 256 * 1024;
  const model = new Uint8Array(SIZE);
  let length = 0;
  let ops = 0;
  let bytes = 0;
  const rng = prng(7);
  while (!stop()) {
    const off = rng.int(SIZE - 8192);
    const len = 1 + rng.int(8192);
    const data = new Uint8Array(len);
    for (let i = 0; i < len; i++) data[i] = rng.int(256);
    const w = await c.request({ type: "Twrite", fid, offset: BigInt(off), data });
    expect(w.count).toBe(len);
    model.set(data, off);
    length = Math.max(length, off + len);
    const roff = rng.int(length);
    const rlen = Math.min(1 + rng.int(16384), length - roff);
    const r = await c.request({ type: "Tread", fid, offset: BigInt(roff), count: rlen });
    expect(r.data.byteLength).toBe(rlen);
    expect(Buffer.compare(Buffer.from(r.data), Buffer.from(model.subarray(roff, roff + rlen)))).toBe(0);
    if (ops % 50 === 0) await c.request({ type: "Tfsync", fid, datasync: 0 });
    ops += 2;
    bytes += len + rlen;
  }
  await c.request({ type: "Tclunk", fid });
  ws.close(1000);
  return { ops, bytes };
}

describe("fuzzing through real sessions", () => {
  it(`answers or closes with a documented code for ${TOTAL} random and mutated messages; a well-behaved session is unharmed`, { timeout: 600_000 }, async () => {
    const t: Tally = {
      sent: 0,
      replies: 0,
      errors: 0,
      flushed: 0,
      locksFlushed: 0,
      closedWith: new Map(),
      cutByClose: 0,
      unanswered: [],
      mutations: new Map(),
      sockets: 0,
    };
    let done = false;
    const good = wellBehaved(() => done);
    const dialects: Dialect[] = ["9P2000.L", "9P2000.L", "9P2000.u", "9P2000"];
    const budget = () => t.sent < TOTAL;
    await Promise.all(
      Array.from({ length: SOCKETS }, async (_, i) => {
        const d = dialects[i % dialects.length]!;
        const gen = generator(d, 1000 * (i + 1));
        const rng = prng(i + 1);
        while (budget()) await fuzzSocket(rng, gen, d, budget, t);
      }),
    );
    done = true;
    const g = await good;
    const health = await fetch(`${gw.url}/healthz`);
    const check = (await (await fetch(`${gw.url}/v1/shares/dev/check`, { headers: OPERATOR_AUTH })).json()) as { ok: boolean; problems: Record<string, number> };
    const fmt = (m: Map<unknown, number>) => [...m].map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(
      `fuzz: ${t.sent} messages over ${t.sockets} sockets: ${t.replies} replies, ${t.errors} error replies, ` +
        `${t.flushed} flushed, ${t.cutByClose} in flight when their socket closed, ${t.unanswered.length} unanswered; ` +
        `${t.locksFlushed} blocked locks flushed; closes: ${fmt(t.closedWith)}; mutations: ${fmt(t.mutations)}; ` +
        `well-behaved session: ${g.ops} requests, ${g.bytes} bytes, no error`,
    );
    expect(t.sent).toBeGreaterThanOrEqual(TOTAL);
    expect(t.unanswered).toEqual([]);
    for (const code of t.closedWith.keys()) expect(DOCUMENTED.has(code) || code === 1000, `close code ${code}`).toBe(true);
    expect(g.ops).toBeGreaterThan(100);
    expect(health.status).toBe(200);
    expect(Object.entries(check.problems).filter(([, n]) => n > 0), `consistency problems: ${JSON.stringify(check)}`).toEqual([]);
    expect(check.ok).toBe(true);
    expect(gw.output()).not.toMatch(/Uncaught|internal error/);
  });
});
