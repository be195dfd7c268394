// The files route as a user meets it: the real curl against a real local
// gateway (wrangler dev), for a file written through 9P that is still open
// (so not yet published to R2), by token and by signed link.

import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Remote } from "../../cli/remote.ts";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";

const TOKEN = "curl-test-token-0123456789";
let gw: LocalGateway;

function curl(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", ...args], { encoding: "buffer", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr: stderr.toString() });
    });
  });
}

beforeAll(async () => {
  // The share keeps the token's SHA-256, as `npx edge9p token` prints it.
  const hash = createHash("sha256").update(TOKEN).digest("hex");
  gw = await startLocalGateway({
    config: { shares: { dev: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "", token_hashes: [hash] } } },
  });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
});

describe("curl through the files route", () => {
  it("curl -r 100-199 returns those 100 bytes of a file written through 9P and not yet published", async () => {
    const r = await Remote.open(gw.wsUrl("dev"), TOKEN);
    const data = randomBytes(4096);
    // Created and written, and still open: the publisher has not run.
    const c = r.c;
    const fid = c.allocFid();
    await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
    await c.request({ type: "Tlcreate", fid, name: new TextEncoder().encode("open.bin"), flags: 1, mode: 0o100644, gid: 0 });
    await c.request({ type: "Twrite", fid, offset: 0n, data });
    expect(await (await gw.bucket()).get("open.bin")).toBeNull();

    const url = `${gw.url}/v1/shares/dev/files/open.bin`;
    // -i: the status line and headers, then the body.
    const part = await curl(["-i", "-r", "100-199", "-H", `Authorization: Bearer ${TOKEN}`, url]);
    expect(part.code, part.stderr).toBe(0);
    const cut = part.stdout.indexOf("\r\n\r\n");
    const head = part.stdout.subarray(0, cut).toString();
    expect(part.stdout.subarray(cut + 4).equals(data.subarray(100, 200))).toBe(true);
    expect(head).toMatch(/^HTTP\/1\.1 206/);
    expect(head).toMatch(/content-range: bytes 100-199\/4096/i);
    expect(head).toMatch(/content-length: 100\r?$/im);

    // Without the token: refused, and said why.
    const denied = await curl(["-w", "%{http_code}", url]);
    expect(denied.stdout.toString()).toBe('{"error":"share dev needs a token"}401');

    // A signed link works with no header at all, ranges included.
    const link = await curl(["-H", `Authorization: Bearer ${TOKEN}`, "-H", "Content-Type: application/json", "-d", '{"path":"open.bin","expires_in":300}', `${gw.url}/v1/shares/dev/links`]);
    const { url: signed } = JSON.parse(link.stdout.toString()) as { url: string };
    const viaLink = await curl(["-r", "100-199", signed]);
    expect(viaLink.stdout.equals(data.subarray(100, 200))).toBe(true);
    const whole = await curl([signed]);
    expect(whole.stdout.equals(data)).toBe(true);

    await c.request({ type: "Tclunk", fid });
    r.close();
  });
});
