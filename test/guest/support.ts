// Runs the project's guest harness (run-guest) from a test, against a real
// local gateway and the bridge.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../support/local-gateway.ts";

const run = promisify(execFile);

/** Prepares the guest kernel and tools (apt-get as root the first time). */
export async function setupGuest(): Promise<void> {
  await run("bash", [join(ROOT, "test/guest/setup"), "-q"], { maxBuffer: 64 << 20, timeout: 900_000 });
}

export interface GuestResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Boots a guest that mounts 127.0.0.1:port and runs `script`. */
export async function runGuest(script: string, opts: { port: number; msize?: number; opts?: string; timeout?: number }): Promise<GuestResult> {
  const args = [join(ROOT, "test/guest/run-guest"), "--port", String(opts.port), "--timeout", String(opts.timeout ?? 300)];
  if (opts.msize) args.push("--msize", String(opts.msize));
  if (opts.opts) args.push("--opts", opts.opts);
  args.push("-");
  return new Promise((resolve) => {
    const child = execFile("bash", args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
    });
    child.stdin!.end(script);
  });
}

/** runGuest with host files copied into the guest's /files. */
export async function runGuestWithFiles(
  script: string,
  opts: { port: number; msize?: number; opts?: string; timeout?: number; files: string[] },
): Promise<GuestResult> {
  const args = [join(ROOT, "test/guest/run-guest"), "--port", String(opts.port), "--timeout", String(opts.timeout ?? 300)];
  if (opts.msize) args.push("--msize", String(opts.msize));
  if (opts.opts) args.push("--opts", opts.opts);
  for (const f of opts.files) args.push("--file", f);
  args.push("-");
  return new Promise((resolve) => {
    const child = execFile("bash", args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
    });
    child.stdin!.end(script);
  });
}

export function md5(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

/** Runs one of diod's command-line clients (Debian package diod). */
export async function diodTool(tool: "diodls" | "diodcat", args: string[]): Promise<Buffer> {
  const { stdout } = await run(tool, args, { encoding: "buffer", maxBuffer: 128 << 20, timeout: 120_000 });
  return stdout;
}
