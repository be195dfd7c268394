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

export interface GuestOptions {
  /** The 9P server's port on the host's 127.0.0.1 (any number with noMount). */
  port: number;
  msize?: number;
  /** Extra mount options, appended as they are. */
  opts?: string;
  /** Seconds before run-guest kills the guest (300). */
  timeout?: number;
  /** Host files or directories copied into the guest (HOST[:GUEST], default /files/NAME). */
  files?: string[];
  /** Arguments of the script ($1...). */
  args?: string[];
  /** Don't mount: the script mounts by itself (or works on tmpfs). */
  noMount?: boolean;
  /** Each piece of the script's output as it arrives (it is also in the result). */
  onStdout?: (chunk: string) => void;
  /** Aborting it stops run-guest, which stops QEMU. */
  signal?: AbortSignal;
}

/** Boots a guest that mounts 127.0.0.1:port and runs `script`. */
export async function runGuest(script: string, opts: GuestOptions): Promise<GuestResult> {
  const args = [join(ROOT, "test/guest/run-guest"), "--port", String(opts.port), "--timeout", String(opts.timeout ?? 300)];
  if (opts.msize) args.push("--msize", String(opts.msize));
  if (opts.opts) args.push("--opts", opts.opts);
  if (opts.noMount) args.push("--no-mount");
  for (const f of opts.files ?? []) args.push("--file", f);
  args.push("-", ...(opts.args ?? []));
  return new Promise((resolve) => {
    const child = execFile("bash", args, { maxBuffer: 64 << 20, signal: opts.signal }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
    });
    if (opts.onStdout) child.stdout!.on("data", (b: Buffer | string) => opts.onStdout!(b.toString()));
    child.stdin!.end(script);
  });
}

/** runGuest with host files copied into the guest's /files. */
export async function runGuestWithFiles(script: string, opts: GuestOptions & { files: string[] }): Promise<GuestResult> {
  return runGuest(script, opts);
}

export function md5(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

/** Runs one of diod's command-line clients (Debian package diod). */
export async function diodTool(tool: "diodls" | "diodcat", args: string[]): Promise<Buffer> {
  const { stdout } = await run(tool, args, { encoding: "buffer", maxBuffer: 128 << 20, timeout: 120_000 });
  return stdout;
}
