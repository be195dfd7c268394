#!/usr/bin/env node
// Builds the share browser (web/) into dist/web, which the worker serves as
// static assets: the page's TypeScript, with the project's own 9P client,
// bundled for browsers by esbuild. wrangler runs it before `dev` and
// `deploy` ([build] in wrangler.toml); `npm run build:web` runs it alone.
//
// Several gateways may start at once (the tests do), so each file is written
// to a temporary name and renamed into place, and left alone when unchanged.

import { build } from "esbuild";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "web");
mkdirSync(out, { recursive: true });

function put(name, bytes) {
  const to = join(out, name);
  try {
    if (Buffer.compare(readFileSync(to), Buffer.from(bytes)) === 0) return;
  } catch {
    // not there yet
  }
  const tmp = `${to}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, to);
}

const result = await build({
  entryPoints: [join(root, "web", "main.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  minify: true,
  sourcemap: "linked",
  outfile: join(out, "app.js"),
  write: false,
  logLevel: "warning",
});
for (const f of result.outputFiles) put(f.path.slice(out.length + 1), f.contents);
for (const f of ["index.html", "style.css"]) put(f, readFileSync(join(root, "web", f)));
