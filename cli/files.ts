// `edge9p ls|cat|cp|mkdir|rm|mv`: a share's files from any machine, no mount:
// 9P over a WebSocket straight to the gateway. Exit codes: 0 done, 1 an
// operation failed (the message says which file and why), 2 bad usage.

import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { eachAtOnce, joinPath, modeString } from "../client/share-files.ts";
import { P9Error } from "../protocol/index.ts";
import { Progress } from "./progress.ts";
import { Remote, type ShareTarget, type Stat, isDirMode, parseShareUrl } from "./remote.ts";

export const FILES_USAGE = `usage:
  edge9p ls [-l] URL              list a directory (or show a file)
  edge9p cat URL...               write files to stdout
  edge9p cp [-r] SRC DST          copy between a local path and a share URL, either way
  edge9p mkdir [-p] URL           make a directory
  edge9p rm [-r] URL              remove a file (or, with -r, a directory and all below)
  edge9p mv URL URL               rename within a share

URL is http(s)://HOST/v1/shares/NAME/PATH (ws:// and wss:// too).
options: --token TOKEN (default: $EDGE9P_TOKEN)
`;

class UsageError extends Error {}

/**
 * Files copied at once by cp -r, on one session: a small file costs a few
 * round trips (walk, create, write, clunk), so many in flight keep the
 * gateway busy rather than waiting on each in turn.
 */
const FILES_AT_ONCE = 24;
/** Files up to this size are read (or written) locally in one call rather than streamed. */
const WHOLE_FILE = 1 << 20;

function target(url: string): ShareTarget {
  const t = parseShareUrl(url);
  if (!t) throw new UsageError(`not a share URL: ${url} (expected http(s)://HOST/v1/shares/NAME/PATH)`);
  return t;
}

export async function filesCommand(cmd: string, argv: string[]): Promise<number> {
  let values: { token?: string; long?: boolean; recursive?: boolean; parents?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        token: { type: "string" },
        long: { type: "boolean", short: "l" },
        recursive: { type: "boolean", short: "r" },
        parents: { type: "boolean", short: "p" },
      },
    }));
  } catch (e) {
    process.stderr.write(`edge9p ${cmd}: ${(e as Error).message}\n${FILES_USAGE}`);
    return 2;
  }
  const token = values.token ?? process.env.EDGE9P_TOKEN;
  let current = "";
  const remotes = new Map<string, Remote>();
  const open = async (t: ShareTarget) => {
    let r = remotes.get(t.wsUrl);
    if (!r) {
      r = await Remote.open(t.wsUrl, token);
      remotes.set(t.wsUrl, r);
    }
    return r;
  };
  try {
    switch (cmd) {
      case "ls": {
        if (positionals.length !== 1) throw new UsageError("ls takes one URL");
        const t = target(positionals[0]!);
        const r = await open(t);
        current = t.path;
        const st = await r.stat(t.path);
        const rows = isDirMode(st.mode) ? await r.list(t.path) : [{ name: t.path.split("/").pop() ?? "", stat: st }];
        rows.sort((a, b) => (a.name < b.name ? -1 : 1));
        for (const e of rows) {
          if (!values.long) process.stdout.write(`${e.name}${isDirMode(e.stat.mode) ? "/" : ""}\n`);
          else {
            const when = new Date(e.stat.mtimeSec * 1000).toISOString().slice(0, 19).replace("T", " ");
            process.stdout.write(`${modeString(e.stat.mode)} ${String(e.stat.size).padStart(12)} ${when} ${e.name}\n`);
          }
        }
        return 0;
      }
      case "cat": {
        if (positionals.length === 0) throw new UsageError("cat takes one or more URLs");
        for (const u of positionals) {
          const t = target(u);
          current = t.path;
          await (await open(t)).read(t.path, (piece) => writeOut(piece));
        }
        return 0;
      }
      case "mkdir": {
        if (positionals.length !== 1) throw new UsageError("mkdir takes one URL");
        const t = target(positionals[0]!);
        const r = await open(t);
        const parts = t.path.split("/");
        for (let i = values.parents ? 1 : parts.length; i <= parts.length; i++) {
          current = parts.slice(0, i).join("/");
          try {
            await r.mkdir(current);
          } catch (e) {
            if (!(values.parents && e instanceof P9Error && e.code === "EEXIST")) throw e;
          }
        }
        return 0;
      }
      case "rm": {
        if (positionals.length !== 1) throw new UsageError("rm takes one URL");
        const t = target(positionals[0]!);
        const r = await open(t);
        const rm = async (path: string): Promise<void> => {
          current = path;
          const st = await r.stat(path);
          if (isDirMode(st.mode)) {
            if (!values.recursive) throw new P9Error(21, "is a directory (rm -r removes directories)");
            for (const e of await r.list(path)) await rm(joinPath(path, e.name));
            current = path;
          }
          await r.remove(path, isDirMode(st.mode));
        };
        await rm(t.path);
        return 0;
      }
      case "mv": {
        if (positionals.length !== 2) throw new UsageError("mv takes two URLs");
        const [a, b] = positionals.map(target) as [ShareTarget, ShareTarget];
        if (a.wsUrl !== b.wsUrl) throw new UsageError("mv works within one share");
        current = a.path;
        await (await open(a)).rename(a.path, b.path);
        return 0;
      }
      case "cp": {
        if (positionals.length !== 2) throw new UsageError("cp takes a source and a destination");
        const [src, dst] = positionals as [string, string];
        const up = parseShareUrl(dst) !== null;
        if (up === (parseShareUrl(src) !== null)) throw new UsageError("cp copies between a local path and a share URL");
        const progress = new Progress(process.stderr);
        if (up) await upload(await open(target(dst)), src, target(dst).path, !!values.recursive, progress, (p) => (current = p));
        else await download(await open(target(src)), target(src).path, dst, !!values.recursive, progress, (p) => (current = p));
        progress.done();
        return 0;
      }
      default:
        throw new UsageError(`unknown command ${cmd}`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`edge9p ${cmd}: ${e.message}\n${FILES_USAGE}`);
      return 2;
    }
    const why = e instanceof P9Error ? `${e.message}` : (e as Error).message;
    process.stderr.write(`edge9p ${cmd}: ${current ? `${current}: ` : ""}${why}\n`);
    return 1;
  } finally {
    for (const r of remotes.values()) r.close();
  }
}

function writeOut(piece: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(piece, (e) => (e ? reject(e) : resolve())));
}

/** Local files below a path (or the path itself), with sizes and modes; a directory's entries are statted at once. */
async function localTree(path: string): Promise<{ rel: string; dir: boolean; size: number; mode: number }[]> {
  const out: { rel: string; dir: boolean; size: number; mode: number }[] = [];
  const visit = async (rel: string, st: Awaited<ReturnType<typeof stat>>) => {
    out.push({ rel, dir: st.isDirectory(), size: Number(st.size), mode: Number(st.mode) });
    if (!st.isDirectory()) return;
    const names = (await readdir(join(path, rel))).sort();
    const stats = await Promise.all(names.map((n) => stat(join(path, rel, n))));
    for (let i = 0; i < names.length; i++) await visit(rel ? `${rel}/${names[i]}` : names[i]!, stats[i]!);
  };
  await visit("", await stat(path));
  return out;
}

async function* once(data: Uint8Array): AsyncIterable<Uint8Array> {
  yield data;
}

async function upload(r: Remote, src: string, dst: string, recursive: boolean, progress: Progress, at: (p: string) => void): Promise<void> {
  const tree = await localTree(src);
  if (tree[0]!.dir && !recursive) throw new Error(`${src} is a directory (cp -r copies directories)`);
  // Into an existing directory, as cp does.
  let base = dst;
  try {
    if (isDirMode((await r.stat(dst)).mode)) base = joinPath(dst, src.replace(/\/+$/, "").split("/").pop()!);
  } catch {
    // dst does not exist: it becomes the copy
  }
  progress.start(tree.filter((e) => !e.dir).reduce((n, e) => n + e.size, 0), tree.filter((e) => !e.dir).length);
  for (const e of tree.filter((e) => e.dir)) {
    at(joinPath(base, e.rel));
    try {
      await r.mkdir(joinPath(base, e.rel), e.mode & 0o7777);
    } catch (err) {
      if (!(err instanceof P9Error && err.code === "EEXIST")) throw err;
    }
  }
  await eachAtOnce(tree.filter((e) => !e.dir), FILES_AT_ONCE, async (e) => {
    const to = e.rel ? joinPath(base, e.rel) : base;
    const from = e.rel ? join(src, e.rel) : src;
    at(to);
    const pieces = e.size <= WHOLE_FILE ? once(await readFile(from)) : createReadStream(from, { highWaterMark: 1 << 20 });
    await r.write(to, e.mode, pieces, (n) => progress.add(n));
    progress.file(to);
  });
}

async function download(r: Remote, src: string, dst: string, recursive: boolean, progress: Progress, at: (p: string) => void): Promise<void> {
  const files: { from: string; to: string }[] = [];
  const dirs: { to: string; mode: number }[] = [];
  let into = dst;
  try {
    if ((await stat(dst)).isDirectory()) into = join(dst, src.split("/").pop() || "share");
  } catch {
    // dst does not exist: it becomes the copy
  }
  // A listing is names and kinds only (its entries' qids): each file's mode
  // and size come with its read (Remote.fetch), so no file is walked twice.
  const walk = async (from: string, to: string, dir: boolean) => {
    at(from);
    if (!dir) return void files.push({ from, to });
    if (!recursive) throw new Error("is a directory (cp -r copies directories)");
    dirs.push({ to, mode: (await r.stat(from)).mode });
    for (const e of await r.names(from)) await walk(joinPath(from, e.name), join(to, e.name), e.dir);
  };
  at(src);
  await walk(src, into, isDirMode((await r.stat(src)).mode));
  // The bytes to come are learnt file by file: the bar counts files.
  progress.start(null, files.length);
  for (const d of dirs) await mkdir(d.to, { recursive: true, mode: d.mode & 0o7777 });
  await eachAtOnce(files, FILES_AT_ONCE, async (f) => {
    at(f.from);
    const st = await r.fetch(f.from, async (st, read) => {
      const mode = st.mode & 0o7777;
      if (st.size <= WHOLE_FILE) {
        const parts: Uint8Array[] = [];
        await read((piece) => void (parts.push(piece.slice()), progress.add(piece.byteLength)));
        await writeFile(f.to, parts.length === 1 ? parts[0]! : Buffer.concat(parts), { mode });
      } else {
        const out = createWriteStream(f.to, { mode });
        await read((piece) => new Promise<void>((resolve, reject) => out.write(piece, (e) => (e ? reject(e) : (progress.add(piece.byteLength), resolve())))));
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      }
      return st;
    });
    // The mode given at open is cut by the umask (and an existing file keeps its own): set it.
    await chmod(f.to, st.mode & 0o7777);
    progress.file(f.from);
  });
}
