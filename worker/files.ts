// GET /v1/shares/:share/files/<path>: a file of the share over plain HTTP,
// for curl and links, with Range (RFC 9110 section 14). Served by the share's
// Durable Object from the same namespace 9P sees, so a file written through
// 9P and not yet published reads the same here.

import { ERRNO, P9Error } from "../protocol/index.ts";
import { ROOT_INO } from "../storage/schema.ts";
import { type ShareFs, isDir, isReg } from "../storage/share-fs.ts";
import type { Inode } from "../storage/types.ts";

/** Bytes read from the share per chunk of the response body. */
const CHUNK = 1 << 20;

const TYPES: Record<string, string> = {
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  log: "text/plain; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  ts: "text/plain; charset=utf-8",
  json: "application/json",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  pdf: "application/pdf",
  wasm: "application/wasm",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
};

function problem(status: number, error: string, headers: Record<string, string> = {}): Response {
  return Response.json({ error }, { status, headers });
}

export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot > 0 && TYPES[name.slice(dot + 1).toLowerCase()]) || "application/octet-stream";
}

/**
 * The byte range a Range header asks for within `size` bytes: null to send
 * the whole file (no header, or one this server does not serve, such as
 * several ranges: RFC 9110 lets it ignore those), "unsatisfiable" for 416.
 */
export function rangeOf(header: string | null, size: number): { start: number; end: number } | null | "unsatisfiable" {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    // A suffix: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return "unsatisfiable";
  return { start, end };
}

/** Walks a URL path from the share's root; throws P9Error (ENOENT, ENOTDIR, EINVAL). */
async function resolve(fs: ShareFs, path: string): Promise<Inode> {
  let node = fs.root();
  const enc = new TextEncoder();
  for (const raw of path.split("/")) {
    if (raw === "") continue;
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      throw new P9Error(ERRNO.EINVAL, `bad percent-encoding in ${JSON.stringify(raw)}`);
    }
    if (name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new P9Error(ERRNO.EINVAL, `${JSON.stringify(name)} is not a file name`);
    }
    node = await fs.lookup(node.ino, enc.encode(name), ROOT_INO);
  }
  return node;
}

export async function serveFile(fs: ShareFs, path: string, req: Request): Promise<Response> {
  let node: Inode;
  try {
    node = await resolve(fs, path);
  } catch (e) {
    if (!(e instanceof P9Error)) throw e;
    if (e.errno === ERRNO.EINVAL || e.errno === ERRNO.ENAMETOOLONG) return problem(400, e.message);
    return problem(404, `no file ${JSON.stringify(decodeURI(path))} in this share`);
  }
  if (isDir(node)) return problem(400, `${JSON.stringify(decodeURI(path))} is a directory`);
  if (!isReg(node)) return problem(400, `${JSON.stringify(decodeURI(path))} is not a regular file`);

  const size = node.size;
  // ino and qid.version: the version changes with every change of content.
  const etag = `"${node.ino.toString(36)}-${node.version.toString(36)}"`;
  const common: Record<string, string> = {
    ETag: etag,
    "Accept-Ranges": "bytes",
    "Last-Modified": new Date(node.mtime.sec * 1000).toUTCString(),
    "Content-Type": contentTypeOf(path.slice(path.lastIndexOf("/") + 1)),
  };
  if (req.headers.get("If-None-Match") === etag) return new Response(null, { status: 304, headers: common });
  const range = rangeOf(req.headers.get("Range"), size);
  if (range === "unsatisfiable") return problem(416, `the file has ${size} bytes`, { "Content-Range": `bytes */${size}` });
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  const length = Math.max(0, end - start + 1);
  const headers: Record<string, string> = { ...common, "Content-Length": String(length) };
  if (range) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  const status = range ? 206 : 200;
  if (req.method === "HEAD" || length === 0) return new Response(null, { status, headers });

  let at = start;
  const stop = start + length;
  // Pinned to the object version the file had when the request came: a
  // replacement meanwhile fails the body rather than mixing two versions.
  const pin = node.etag;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(Math.min(CHUNK, stop - at));
      const n = await fs.read(node, at, buf, undefined, pin);
      if (n === 0) {
        controller.error(new Error(`the file shrank to ${at} bytes while it was sent`));
        return;
      }
      controller.enqueue(n === buf.byteLength ? buf : buf.subarray(0, n));
      at += n;
      if (at >= stop) controller.close();
    },
  });
  // A plain ReadableStream goes out chunked, without Content-Length; a
  // FixedLengthStream of the known length keeps the header on the wire (and
  // fails the response if the body comes out short).
  const fixed = new FixedLengthStream(length);
  void body.pipeTo(fixed.writable).catch(() => {});
  return new Response(fixed.readable, { status, headers });
}
