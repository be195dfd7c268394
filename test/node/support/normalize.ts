// Turns a sample message into what decoding it must give in a dialect:
// fields the dialect lacks dropped, JS strings turned into UTF-8 bytes.

import { type Dialect, type MessageInit, specOf } from "../../../protocol/index.ts";

const DOTU_STAT_FIELDS = ["extension", "n_uid", "n_gid", "n_muid"];

export function forDialect(m: MessageInit, d: Dialect): MessageInit {
  const keep = new Set(["type", "tag", ...specOf(m.type).shape.in(d).map((f) => f.name)]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (!keep.has(k)) continue;
    if (k === "stat" && d !== "9P2000.u") {
      const st = { ...(v as Record<string, unknown>) };
      for (const f of DOTU_STAT_FIELDS) delete st[f];
      out[k] = st;
    } else out[k] = v;
  }
  return out as MessageInit;
}

const enc = new TextEncoder();

export function asDecoded(v: unknown): unknown {
  if (typeof v === "string") return enc.encode(v);
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(asDecoded);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, k === "type" && typeof x === "string" ? x : asDecoded(x)]));
  }
  return v;
}
