#!/usr/bin/env node
// The `edge9p` command. The sources are TypeScript, and a clone works without
// a build step: the first run bundles the command with esbuild into a cache
// (node_modules/.cache/edge9p/, or EDGE9P_CLI_CACHE), and every run after
// loads that one file, rebuilt as soon as any of its sources is newer than
// it. Loading the sources through tsx module by module took 0.3-0.35 s of
// every start (about 30 modules, each through the loader's hooks) against
// 0.05 s for the bundle, and `edge9p cp -r` of 1,000 small files is a
// command a user times start included. Anything the cache cannot do (no
// esbuild, a read-only directory) falls back to tsx.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = join(ROOT, "cli/main.ts");
const CACHE = process.env.EDGE9P_CLI_CACHE || join(ROOT, "node_modules/.cache/edge9p");
const BUNDLE = join(CACHE, "cli.mjs");
const INPUTS = join(CACHE, "inputs.json");

/** The cached bundle, if every source it was built from is older than it. */
function fresh() {
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(INPUTS, "utf8"));
    for (const f of inputs) if (statSync(join(ROOT, f)).mtimeMs > builtAt) return null;
    return statSync(BUNDLE).isFile() ? BUNDLE : null;
  } catch {
    return null;
  }
}

/** Bundles the command; returns the bundle's path. */
async function build() {
  const esbuild = await import("esbuild");
  const builtAt = Date.now();
  const tmp = `${BUNDLE}.${process.pid}.tmp`;
  // Each module keeps its own import.meta.url (main.ts finds package.json by it).
  const ownUrl = {
    name: "own-import-meta-url",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => ({
        contents: readFileSync(args.path, "utf8").replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)),
        loader: "ts",
      }));
    },
  };
  const r = await esbuild.build({
    entryPoints: [ENTRY],
    absWorkingDir: ROOT,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    outfile: tmp,
    metafile: true,
    logLevel: "silent",
    plugins: [ownUrl],
  });
  // Packages stay external: they resolve from here as they would from the sources.
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(INPUTS, JSON.stringify({ builtAt, inputs: Object.keys(r.metafile.inputs) }));
  renameSync(tmp, BUNDLE);
  return BUNDLE;
}

async function load() {
  try {
    mkdirSync(CACHE, { recursive: true });
    const path = fresh() ?? (await build());
    return await import(pathToFileURL(path).href);
  } catch {
    const { tsImport } = await import("tsx/esm/api");
    return tsImport("../cli/main.ts", import.meta.url);
  }
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2));
