// `edge9p ls|cat|cp|mkdir|rm|mv` as a user runs them: the real command in a
// child process, against a real local gateway (wrangler dev).

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";
import { EDGE9P_BIN as BIN, runEdge9p } from "../support/run-cli.ts";

let gw: LocalGateway;
let share: string;
const tmp = mkdtempSync(join(tmpdir(), "edge9p-cli-"));

beforeAll(async () => {
  gw = await startLocalGateway();
  share = `${gw.url}/v1/shares/dev`;
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs `edge9p ...` on a pseudo-terminal (script(1)); resolves with what the terminal got. */
function runOnTty(args: string[]): Promise<string> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  return new Promise((resolve, reject) => {
    // A terminal of 120 columns (script's own size follows no terminal here).
    const p = spawn("script", ["-qfec", `stty cols 120 rows 40; ${cmd}`, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (b: Buffer) => (out += b.toString()));
    p.on("error", reject);
    p.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`))));
  });
}

/** Every file below a directory: relative path -> [mode, bytes]. */
function tree(dir: string): Map<string, [number, Buffer]> {
  const out = new Map<string, [number, Buffer]>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel))) {
      const p = join(dir, rel, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(join(rel, n));
      else out.set(join(rel, n), [st.mode & 0o7777, readFileSync(p)]);
    }
  };
  walk("");
  return out;
}

describe("edge9p file commands", () => {
  it("cp -r of a 1,000-file tree up and back down gives identical files and modes", async () => {
    const src = join(tmp, "src");
    const modes = [0o644, 0o600, 0o755, 0o640];
    for (let i = 0; i < 1000; i++) {
      const d = join(src, `d${i % 10}`, `e${i % 3}`);
      mkdirSync(d, { recursive: true });
      const f = join(d, `f${i}.bin`);
      writeFileSync(f, randomBytes(i % 7 === 0 ? 100_000 : i % 500));
      chmodSync(f, modes[i % 4]!);
    }
    const up = await runEdge9p(["cp", "-r", src, `${share}/tree`]);
    expect(up.stderr).toMatch(/^1000 files, \d+ bytes in [\d.]+ s$/m);
    expect(up.code).toBe(0);
    const back = join(tmp, "back");
    const down = await runEdge9p(["cp", "-r", `${share}/tree`, back]);
    expect(down.code, down.stderr).toBe(0);
    const a = tree(src);
    const b = tree(back);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, [mode, data]] of a) {
      expect(b.get(k)![0], k).toBe(mode);
      expect(Buffer.compare(b.get(k)![1], data), k).toBe(0);
    }
    const ls = await runEdge9p(["ls", `${share}/tree`]);
    expect(ls.stdout.toString()).toBe(Array.from({ length: 10 }, (_, i) => `d${i}/\n`).join(""));
  }, 300_000);

  it("cp -r over an existing copy replaces each file's bytes (shorter ones too) and mode, both ways", async () => {
    const src = join(tmp, "ow-src");
    const back = join(tmp, "ow-back");
    const files = Array.from({ length: 60 }, (_, i) => join(src, `d${i % 3}`, `f${i}.bin`));
    const fill = (round: number) => {
      files.forEach((f, i) => {
        mkdirSync(join(f, ".."), { recursive: true });
        // The second round is shorter: what the first left past its end must go.
        writeFileSync(f, randomBytes(round === 0 ? 3000 + i : 10 + i));
        chmodSync(f, round === 0 ? 0o644 : 0o600);
      });
    };
    expect((await runEdge9p(["mkdir", `${share}/ow`])).code).toBe(0);
    fill(0);
    expect((await runEdge9p(["cp", "-r", src, `${share}/ow`])).code).toBe(0);
    expect((await runEdge9p(["cp", "-r", `${share}/ow/ow-src`, back])).code).toBe(0);
    fill(1);
    // Into the existing directory: ow/ow-src and back/ow-src already hold every file.
    const up = await runEdge9p(["cp", "-r", src, `${share}/ow`]);
    expect(up.code, up.stderr).toBe(0);
    const down = await runEdge9p(["cp", "-r", `${share}/ow/ow-src`, back]);
    expect(down.code, down.stderr).toBe(0);
    const a = tree(src);
    const b = tree(join(back, "ow-src"));
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, [mode, data]] of a) {
      expect(b.get(k)![0], k).toBe(mode);
      expect(Buffer.compare(b.get(k)![1], data), k).toBe(0);
    }
  }, 120_000);

  it("cat of a missing file exits 1 with the path and the reason; a bad URL exits 2", async () => {
    const r = await runEdge9p(["cat", `${share}/tree/no-such.txt`]);
    expect(r.code).toBe(1);
    expect(r.stdout.byteLength).toBe(0);
    expect(r.stderr).toBe("edge9p cat: tree/no-such.txt: No such file or directory\n");
    const bad = await runEdge9p(["cat", "http://127.0.0.1:1/not-a-share"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^edge9p cat: not a share URL/);
  }, 60_000);

  it("mkdir, mv, cat and rm -r do what they say", async () => {
    expect((await runEdge9p(["mkdir", "-p", `${share}/ops/a/b`])).code).toBe(0);
    writeFileSync(join(tmp, "note.txt"), "note\n");
    expect((await runEdge9p(["cp", join(tmp, "note.txt"), `${share}/ops/a/b/note.txt`])).code).toBe(0);
    expect((await runEdge9p(["mv", `${share}/ops/a/b/note.txt`, `${share}/ops/a/moved.txt`])).code).toBe(0);
    expect((await runEdge9p(["cat", `${share}/ops/a/moved.txt`])).stdout.toString()).toBe("note\n");
    const rm = await runEdge9p(["rm", `${share}/ops/a`]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/is a directory/);
    expect((await runEdge9p(["rm", "-r", `${share}/ops/a`])).code).toBe(0);
    expect((await runEdge9p(["ls", `${share}/ops`])).stdout.toString()).toBe("");
  }, 60_000);

  it("draws a progress bar on a terminal, and prints plain lines when piped", async () => {
    writeFileSync(join(tmp, "big.bin"), randomBytes(24 << 20));
    const tty = await runOnTty(["cp", join(tmp, "big.bin"), `${share}/big-tty.bin`]);
    expect(tty).toMatch(/\r\[[#.]{20}\] +\d+% [\d.]+\/25\.2 MB [\d.]+ MB\/s \d+ s left [01]\/1 files/);
    expect(tty).not.toMatch(/copied/);
    const piped = await runEdge9p(["cp", join(tmp, "big.bin"), `${share}/big-pipe.bin`]);
    expect(piped.stderr).toBe(`copied big-pipe.bin\n${piped.stderr.split("\n")[1]}\n`);
    expect(piped.stderr).not.toMatch(/\r/);
  }, 120_000);
});
