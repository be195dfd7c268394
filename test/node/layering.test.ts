// The arrows point down: protocol/ imports nothing but protocol/, and no
// platform module; storage/ and bridge/ never reach into worker/; client/
// (shared by the CLI and the browser page) and web/ use only the protocol,
// nothing of Node or of the gateway.

import { readFileSync, readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|js|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;'"]*?from\s*["']([^"']+)["']/g)].map((m) => m[1]!);
}

function target(file: string, spec: string): string {
  return spec.startsWith(".") ? relative(root, resolve(root, file, "..", spec)) : spec;
}

describe("layering", () => {
  it("protocol/ imports only from protocol/", () => {
    const files = sources("protocol");
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      for (const spec of imports(f)) {
        expect(target(f, spec), `${f} imports ${spec}`).toMatch(/^protocol\//);
      }
    }
  });

  it("storage/, bridge/, client/ and web/ import only what lies below them", () => {
    for (const [dir, banned] of [
      ["storage", /^(worker|bridge)\//],
      ["bridge", /^(worker|storage)\/|^cloudflare:/],
      ["client", /^(worker|storage|bridge|cli|web)\/|^cloudflare:|^node:|^ws$/],
      ["web", /^(worker|storage|bridge|cli)\/|^cloudflare:|^node:|^ws$/],
    ] as const) {
      let files: string[] = [];
      try {
        files = sources(dir);
      } catch {
        continue;
      }
      for (const f of files) for (const spec of imports(f)) expect(target(f, spec), `${f} imports ${spec}`).not.toMatch(banned);
    }
  });

  it("the share object's modules do not import worker/share-object.ts back", () => {
    // It holds only the Durable Object's entry points; what it delegates to
    // (worker/sockets.ts, sessions.ts, upgrade.ts, alarms.ts, ...) stands
    // below it. Only the worker's entry and its routes (the header names) reach it.
    const files = sources("worker");
    expect(files).toContain("worker/share-object.ts");
    for (const f of files) {
      if (f === "worker/index.ts" || f === "worker/app.ts") continue;
      for (const spec of imports(f)) expect(target(f, spec), `${f} imports ${spec}`).not.toBe("worker/share-object.ts");
    }
  });
});
