// The edge9p command as a user runs it: a child process with its output piped.

import { execFile } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./local-gateway.ts";

export const EDGE9P_BIN = join(ROOT, "bin/edge9p.mjs");

/** Runs `edge9p ...`; resolves with the exit code and output. */
export function runEdge9p(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [EDGE9P_BIN, ...args], { encoding: "buffer", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === "number" ? code : 1, stdout, stderr: stderr.toString() });
    });
  });
}
