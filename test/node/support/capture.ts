// Reads the recorded client/server traffic in test/fixtures/captures (format
// in test/fixtures/captures/README.md).

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface Record {
  dir: "T" | "R";
  bytes: Uint8Array;
}

export const CAPTURES = ["linux61-read", "linux61-write", "linux61-cache-loose", "linux61-devshare", "diodls", "diodcat"] as const;

export function readCapture(name: string): Record[] {
  const path = fileURLToPath(new URL(`../../fixtures/captures/${name}.bin`, import.meta.url));
  return parseCapture(new Uint8Array(readFileSync(path)), name);
}

/** The records of a .bin file's bytes (`name` for errors). */
export function parseCapture(buf: Uint8Array, name: string): Record[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Record[] = [];
  let i = 0;
  while (i < buf.byteLength) {
    const dir = String.fromCharCode(buf[i]!);
    if (dir !== "T" && dir !== "R") throw new Error(`${name}: bad direction byte at ${i}`);
    const size = view.getUint32(i + 1, true);
    out.push({ dir, bytes: buf.subarray(i + 1, i + 1 + size) });
    i += 1 + size;
  }
  return out;
}
