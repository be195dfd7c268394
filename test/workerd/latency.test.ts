// The development latency model (EDGE9P.r2_latency_ms, r2_bandwidth_bytes):
// every R2 call's answer is held at least as long as the model says, the
// bytes come through unchanged, and a deployed gateway refuses the setting.

import { describe, expect, it } from "vitest";
import { withLatency } from "../../storage/latency.ts";
import { parseConfig } from "../../worker/config.ts";
import { BUCKET, noise } from "./support/gateway.ts";

const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t = Date.now();
  const v = await f();
  return [v, Date.now() - t];
};

describe("the R2 latency model", () => {
  it("holds every call for the latency, and a body for its bytes at the bandwidth", async () => {
    const data = noise(200_000, 7);
    const b = withLatency(BUCKET, { ms: 150, bytesPerSec: 1_000_000 });
    const [, put] = await timed(() => b.put("latency/x.bin", data));
    expect(put).toBeGreaterThanOrEqual(150 + 200 - 5);
    const [obj, get] = await timed(() => b.get("latency/x.bin", { range: { offset: 0, length: 100_000 } }));
    expect(get).toBeGreaterThanOrEqual(150 + 100 - 5);
    expect(new Uint8Array(await obj!.arrayBuffer())).toEqual(data.subarray(0, 100_000));
    for (const call of [() => b.head("latency/x.bin"), () => b.list({ prefix: "latency/" }), () => b.delete("latency/x.bin")]) {
      const [, ms] = await timed(call as () => Promise<unknown>);
      expect(ms).toBeGreaterThanOrEqual(145);
    }
    expect(await BUCKET.head("latency/x.bin")).toBeNull();
  });

  it("is refused on a deployed gateway, naming the field", () => {
    const base = { shares: { s: { binding: "B", bucket: "bkt", token_hashes: ["0".repeat(64)] } } };
    expect(parseConfig({ ...base, r2_latency_ms: 30 }, () => true)).toMatchObject({ ok: true });
    const r = parseConfig({ ...base, deployed: true, r2_latency_ms: 30 }, () => true);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/EDGE9P\.r2_latency_ms: a development setting/);
  });
});
