// npm run check: the configuration is validated before deploy as the worker
// would validate it, and a typo fails with the field named.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { checkConfig } from "../../scripts/check-config.ts";
import { parseConfig } from "../../worker/config.ts";
import { ROOT } from "../support/local-gateway.ts";

/** wrangler.toml with `edit` applied, in a temporary directory. */
function variant(edit: (toml: string) => string): string {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(
    'main = "worker/index.ts"',
    `main = "${join(ROOT, "worker/index.ts")}"`,
  );
  const dir = mkdtempSync(join(tmpdir(), "edge9p-check-"));
  const path = join(dir, "wrangler.toml");
  writeFileSync(path, edit(toml));
  return path;
}

describe("npm run check", () => {
  it("passes the shipped configuration and the tests' one", () => {
    expect(checkConfig(join(ROOT, "wrangler.toml")).ok).toBe(true);
    expect(checkConfig(join(ROOT, "test/workerd/wrangler.toml")).ok).toBe(true);
    expect(checkConfig(join(ROOT, "test/workerd-limits/wrangler.toml")).ok).toBe(true);
  });

  it("fails on a typo, naming the field", () => {
    const r = checkConfig(variant((t) => t.replace('prefix = ""', 'prefx = ""')));
    expect(r).toEqual({ ok: false, lines: [expect.stringMatching(/EDGE9P\.shares\.dev: Unrecognized key: "prefx"/)] });
  });

  it("fails when a share names the wrong bucket for its binding", () => {
    const r = checkConfig(variant((t) => t.replace('bucket = "edge9p-dev"', 'bucket = "another-bucket"')));
    expect(r.ok).toBe(false);
    expect(r.lines.join("\n")).toMatch(/EDGE9P\.shares\.dev\.bucket: "another-bucket", but binding DEV_BUCKET is bucket "edge9p-dev"/);
  });

  it("notes a deployed share whose token hashes can only be in the EDGE9P_TOKENS secret, which it cannot read", () => {
    const r = checkConfig(variant((t) => t.replace("[vars.EDGE9P]", "[vars.EDGE9P]\ndeployed = true")));
    expect(r.ok).toBe(true);
    expect(r.lines[0]).toBe("share dev: no token_hashes here: the deployed worker refuses it unless the EDGE9P_TOKENS secret gives it some (wrangler secret list)");
  });

  it("allows device nodes on a local gateway's shares and refuses them on a deployed one's unless a share says device_nodes", () => {
    const share = { binding: "B", bucket: "bucket", token_hashes: ["0".repeat(64)] };
    const devices = (top: object, s: object = {}) => {
      const r = parseConfig({ ...top, shares: { a: { ...share, ...s } } }, () => true);
      if (!r.ok) throw new Error(r.error);
      return r.config.shares.a!.device_nodes;
    };
    expect(devices({})).toBe(true);
    expect(devices({ deployed: true })).toBe(false);
    expect(devices({ deployed: true }, { device_nodes: true })).toBe(true);
    expect(devices({}, { device_nodes: false })).toBe(false);
    const bad = parseConfig({ shares: { a: { ...share, device_nodes: "yes" } } }, () => true);
    expect(bad.ok === false && bad.error).toMatch(/EDGE9P\.shares\.a\.device_nodes/);
  });

  it("exits non-zero from the command line", async () => {
    const path = variant((t) => t.replace("msize_cap = 4194304", "msize_cap = 1000"));
    const run = promisify(execFile);
    await expect(run(process.execPath, ["--import", "tsx", join(ROOT, "scripts/check-config.ts"), "--config", path])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/EDGE9P\.msize_cap/),
    });
  });
});
