// The arrows point down: protocol/ imports nothing but protocol/, and no
// platform module; storage/ and bridge/ never reach into worker/; client/
// (shared by the CLI and the browser page) and web/ use only the protocol,
// nothing of Node or of the gateway. And no arrows go round: a cycle among
// the project's modules would make "below" meaningless (and its modules'
// order of evaluation a matter of which one is imported first).
//
// Every form of import counts: `import ... from`, `export ... from`, a
// side-effect `import "x"` and a dynamic `import("x")`, type-only or not.
// A folder that is checked and missing fails: a rename must not turn a
// check into nothing.

import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** The folders of the import graph whose cycles fail the test. */
const GRAPH = ["protocol", "worker", "storage", "bridge", "cli", "client", "web"];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|js|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** A checked folder's files; fails when the folder is missing or holds none. */
function checked(dir: string): string[] {
  expect(existsSync(join(root, dir)) && statSync(join(root, dir)).isDirectory(), `${dir}/ is missing`).toBe(true);
  const files = sources(dir);
  expect(files.length, `${dir}/ holds no sources`).toBeGreaterThan(0);
  return files;
}

/** The text without comments, so that an import named in prose is not one. */
function code(text: string): string {
  // Only comments that open a line: "files/*" in a route is no comment.
  return text.replace(/^\s*\/\*[\s\S]*?\*\//gm, "").replace(/^\s*\/\/.*$/gm, "");
}

const STATIC = /(?:^|\n)\s*(?:import|export)[^;'"]*?from\s*["']([^"']+)["']/g;
const SIDE_EFFECT = /(?:^|\n)\s*import\s*["']([^"']+)["']/g;
const DYNAMIC = /(?<![\w$.])import\s*\(\s*([^)]*?)\s*\)/g;

/** Every module a file imports, in any form; a dynamic import of anything but a string literal is returned as-is, to be refused. */
function imports(text: string): string[] {
  const t = code(text);
  const out = [...t.matchAll(STATIC), ...t.matchAll(SIDE_EFFECT)].map((m) => m[1]!);
  for (const m of t.matchAll(DYNAMIC)) {
    const lit = /^["']([^"']+)["']$/.exec(m[1]!);
    out.push(lit ? lit[1]! : `<not a literal: ${m[1]}>`);
  }
  return out;
}

function importsOf(file: string): string[] {
  return imports(readFileSync(join(root, file), "utf8"));
}

function target(file: string, spec: string): string {
  return spec.startsWith(".") ? relative(root, resolve(root, file, "..", spec)) : spec;
}

/** The project file a relative import names (a type import may leave out the extension), or null. */
function resolved(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  const t = target(file, spec);
  for (const c of [t, `${t}.ts`, join(t, "index.ts")]) {
    if (existsSync(join(root, c)) && statSync(join(root, c)).isFile()) return c;
  }
  return null;
}

/** The first cycle of an import graph (a path that ends where it starts), or null. */
function cycleOf(edges: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (f: string): string[] | null => {
    state.set(f, "open");
    path.push(f);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === "open") return [...path.slice(path.indexOf(g)), g];
      if (!state.has(g)) {
        const c = visit(g);
        if (c) return c;
      }
    }
    path.pop();
    state.set(f, "done");
    return null;
  };
  for (const f of [...edges.keys()].sort()) {
    if (state.has(f)) continue;
    const c = visit(f);
    if (c) return c;
  }
  return null;
}

describe("layering", () => {
  it("protocol/ imports only from protocol/", () => {
    const files = checked("protocol");
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      for (const spec of importsOf(f)) {
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
      for (const f of checked(dir)) for (const spec of importsOf(f)) expect(target(f, spec), `${f} imports ${spec}`).not.toMatch(banned);
    }
  });

  it("the share object's modules do not import worker/share-object.ts back", () => {
    // It holds only the Durable Object's entry points; what it delegates to
    // (worker/sockets.ts, sessions.ts, upgrade.ts, alarms.ts, ...) stands
    // below it. Only the worker's entry exports it (the routes' header names
    // are in worker/object-headers.ts).
    const files = sources("worker");
    expect(files).toContain("worker/share-object.ts");
    for (const f of files) {
      if (f === "worker/index.ts") continue;
      for (const spec of importsOf(f)) expect(target(f, spec), `${f} imports ${spec}`).not.toBe("worker/share-object.ts");
    }
  });

  it("has no import cycle among the project's modules", () => {
    const edges = new Map<string, string[]>();
    for (const dir of GRAPH) {
      for (const f of checked(dir)) {
        const to: string[] = [];
        for (const spec of importsOf(f)) {
          expect(spec, `${f}: a dynamic import must name its module`).not.toMatch(/^<not a literal/);
          if (!spec.startsWith(".")) continue;
          const g = resolved(f, spec);
          expect(g, `${f} imports ${spec}, which is no file`).not.toBeNull();
          to.push(g!);
        }
        edges.set(f, to);
      }
    }
    const cycle = cycleOf(edges);
    expect(cycle, `import cycle: ${cycle?.join(" -> ")}`).toBeNull();
  });

  it("reads every form of import", () => {
    const text = [
      'import { a } from "./a.ts";',
      'import type {\n  B,\n  C,\n} from "./b.ts";',
      'export * from "./c.ts";',
      'import "./d.ts";',
      'const e = await import("./e.ts");',
      'type F = import("./f").F;',
      "// import \"./not-g.ts\"; a comment",
      '/* import("./not-h.ts") */',
      "const i = await import(name);",
      "await fs.reimport(dir);",
    ].join("\n");
    expect(imports(text).sort()).toEqual(["./a.ts", "./b.ts", "./c.ts", "./d.ts", "./e.ts", "./f", "<not a literal: name>"].sort());
  });

  it("finds a cycle, and none where there is none", () => {
    const chain = new Map([
      ["a", ["b"]],
      ["b", ["c"]],
      ["c", []],
    ]);
    expect(cycleOf(chain)).toBeNull();
    expect(cycleOf(new Map([...chain, ["c", ["a"]]]))).toEqual(["a", "b", "c", "a"]);
    expect(cycleOf(new Map([["x", ["x"]]]))).toEqual(["x", "x"]);
  });
});
