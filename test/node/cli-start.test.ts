// How the edge9p command starts (bin/edge9p.mjs): from a bundle of its
// sources, cached, and rebuilt as soon as a source is newer than the bundle.

import { execFile } from "node:child_process";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/local-gateway.ts";
import { EDGE9P_BIN } from "../support/run-cli.ts";

const run = promisify(execFile);
// Inside node_modules, so the bundle resolves its packages as the sources do.
const CACHE = join(ROOT, "node_modules/.cache", `edge9p-test-${process.pid}`);
const env = { ...process.env, EDGE9P_CLI_CACHE: CACHE };
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

afterAll(() => rmSync(CACHE, { recursive: true, force: true }));

describe("the edge9p command's start", () => {
  it("runs from a cached bundle that keeps each module's own import.meta.url", async () => {
    const first = await run(process.execPath, [EDGE9P_BIN, "--version"], { env });
    // main.ts finds package.json next to its own source, not next to the bundle.
    expect(first.stdout.trim()).toBe(`edge9p ${version}`);
    const bundle = join(CACHE, "cli.mjs");
    const inputs = JSON.parse(readFileSync(join(CACHE, "inputs.json"), "utf8")) as { builtAt: number; inputs: string[] };
    expect(inputs.inputs).toContain("cli/main.ts");
    expect(inputs.inputs).toContain("protocol/codec.ts");
    const built = statSync(bundle).mtimeMs;
    // A second start uses it as it is.
    await run(process.execPath, [EDGE9P_BIN, "--version"], { env });
    expect(statSync(bundle).mtimeMs).toBe(built);
  });

  it("rebuilds once a source is newer than the bundle, and when the bundle is gone", async () => {
    const bundle = join(CACHE, "cli.mjs");
    await run(process.execPath, [EDGE9P_BIN, "--version"], { env });
    const inputsPath = join(CACHE, "inputs.json");
    const inputs = JSON.parse(readFileSync(inputsPath, "utf8")) as { builtAt: number; inputs: string[] };
    // As if every source had been edited after the build.
    writeFileSync(inputsPath, JSON.stringify({ ...inputs, builtAt: 0 }));
    const before = statSync(bundle).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    const again = await run(process.execPath, [EDGE9P_BIN, "--version"], { env });
    expect(again.stdout.trim()).toBe(`edge9p ${version}`);
    expect(statSync(bundle).mtimeMs).toBeGreaterThan(before);
    expect((JSON.parse(readFileSync(inputsPath, "utf8")) as { builtAt: number }).builtAt).toBeGreaterThan(0);
    rmSync(bundle);
    const gone = await run(process.execPath, [EDGE9P_BIN, "--version"], { env });
    expect(gone.stdout.trim()).toBe(`edge9p ${version}`);
    expect(statSync(bundle).isFile()).toBe(true);
  });
});
