// Reading the configuration and bindings out of the worker's env.

import { withLatency } from "../storage/latency.ts";
import { CONFIG_VAR, type Config, type ConfigResult, OPERATOR_TOKENS_SECRET, type ShareConfig, TOKENS_SECRET, parseConfig } from "./config.ts";

const cache = new WeakMap<object, ConfigResult>();

/** The parsed configuration, once per env object (once per isolate). */
export function configOf(env: object): ConfigResult {
  let r = cache.get(env);
  if (!r) {
    const rec = env as Record<string, unknown>;
    r = parseConfig(rec[CONFIG_VAR], (name) => isBucket(rec[name]), rec[TOKENS_SECRET], rec[OPERATOR_TOKENS_SECRET]);
    cache.set(env, r);
  }
  return r;
}

function isBucket(v: unknown): boolean {
  return typeof v === "object" && v !== null && typeof (v as R2Bucket).list === "function";
}

/** A share's R2 binding; with the development latency model, held as it says. */
export function bucketOf(env: object, share: ShareConfig, config: Config): R2Bucket {
  const b = (env as Record<string, unknown>)[share.binding] as R2Bucket;
  if (config.r2_latency_ms === 0 && config.r2_bandwidth_bytes === 0) return b;
  return withLatency(b, { ms: config.r2_latency_ms, bytesPerSec: config.r2_bandwidth_bytes });
}

/** FNV-1a, 64 bits: a stable fsid for a share's object. */
export function fsidOf(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(name)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}
