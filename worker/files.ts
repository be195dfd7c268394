// GET /v1/shares/:share/files/<path>: a file of the share over plain HTTP,
// for curl and links, with Range (RFC 9110 section 14). Served by the share's
// Durable Object from the same namespace 9P sees, so a file written through
// 9P and not yet published reads the same here. Only passive types are
// shown inline, and nothing served here runs in the gateway's origin
// (dispositionOf, FILE_RESPONSE_HEADERS).

import { ERRNO, P9Error } from "../protocol/index.ts";
import { PATH_MAX } from "../storage/keys.ts";
import { ROOT_INO } from "../storage/schema.ts";
import type { ShareFs } from "../storage/share-fs.ts";
import { type Inode, isDir, isReg } from "../storage/types.ts";

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
  avif: "image/avif",
  bmp: "image/bmp",
  ico: "image/x-icon",
  pdf: "application/pdf",
  mp3: "audio/mpeg",
  m4a: "audio/mp4",
  ogg: "audio/ogg",
  opus: "audio/ogg",
  flac: "audio/flac",
  wav: "audio/wav",
  mp4: "video/mp4",
  m4v: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  wasm: "application/wasm",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
};

/**
 * Types a browser shows without running anything: plain text, raster
 * images (not SVG, which holds script), PDF, audio and video. Everything
 * else (HTML, SVG, XML, JavaScript, unknown) is sent as an attachment: the
 * files route shares its origin with the share browser, whose page keeps
 * the share's token in sessionStorage, so a file that ran as a page there
 * could read it.
 */
const PASSIVE = /^(text\/plain|image\/(png|jpeg|gif|webp|avif|bmp|x-icon)|application\/pdf|audio\/[a-z0-9.+-]+|video\/[a-z0-9.+-]+)(;|$)/;

/**
 * Sent with every answer of the files route (the worker adds them, so
 * refusals carry them too): no sniffing a type other than the one named
 * (https://fetch.spec.whatwg.org/#x-content-type-options-header), and a
 * sandbox CSP (CSP3 section 6.3.2: a unique opaque origin, no script), so
 * even a document opened inline runs nothing in the gateway's origin.
 */
export const FILE_RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy": "sandbox",
};

/** RFC 5987 section 3.2.1 attr-char: what an ext-value keeps unencoded. */
const ATTR_CHAR = /^[A-Za-z0-9!#$&+\-.^_`|~]$/;

/**
 * Content-Disposition for a file named `name` of type `type` (RFC 6266):
 * inline for passive types, attachment for the rest. The filename parameter
 * holds an ASCII stand-in (non-ASCII, '"', '\\' and '%' as '_', which some
 * agents would decode: RFC 6266 appendix D); filename*, which agents prefer
 * (section 4.3), the exact name as UTF-8 (RFC 5987 section 3.2).
 */
export function dispositionOf(name: string, type: string): string {
  const kind = PASSIVE.test(type) ? "inline" : "attachment";
  const fallback = [...name].map((ch) => (/^[\x20-\x7e]$/.test(ch) && !/["\\%]/.test(ch) ? ch : "_")).join("");
  let v = `${kind}; filename="${fallback}"`;
  if (fallback !== name) {
    const ext = [...new TextEncoder().encode(name)]
      .map((b) => (ATTR_CHAR.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`))
      .join("");
    v += `; filename*=UTF-8''${ext}`;
  }
  return v;
}

/**
 * The names of a files-route path (percent-encoded, '/'-separated), or null
 * if one is not valid percent-encoded UTF-8 (RFC 3986 section 2.1).
 */
export function decodePath(path: string): string[] | null {
  try {
    return path.split("/").filter((n) => n !== "").map((n) => decodeURIComponent(n));
  } catch {
    return null;
  }
}

export const BAD_ENCODING = "the file's path is not valid percent-encoded UTF-8 (RFC 3986 section 2.1)";
export const TOO_LONG = `the file's path has ${PATH_MAX} bytes or more, past PATH_MAX (ENAMETOOLONG)`;

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

/** Walks a path's names from the share's root; throws P9Error (ENOENT, ENOTDIR, EINVAL). */
async function resolve(fs: ShareFs, names: string[]): Promise<Inode> {
  let node = fs.root();
  const enc = new TextEncoder();
  for (const name of names) {
    if (name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
      throw new P9Error(ERRNO.EINVAL, `${JSON.stringify(name)} is not a file name`);
    }
    node = await fs.lookup(node.ino, enc.encode(name), ROOT_INO);
  }
  return node;
}

export async function serveFile(fs: ShareFs, path: string, req: Request): Promise<Response> {
  const names = decodePath(path);
  if (names === null) return problem(400, BAD_ENCODING);
  // As Linux's getname answers a path of PATH_MAX bytes or more: ENAMETOOLONG.
  if (new TextEncoder().encode(names.join("/")).byteLength >= PATH_MAX) return problem(400, TOO_LONG);
  const shown = JSON.stringify(names.join("/"));
  let node: Inode;
  try {
    node = await resolve(fs, names);
  } catch (e) {
    if (!(e instanceof P9Error)) throw e;
    if (e.errno === ERRNO.EINVAL || e.errno === ERRNO.ENAMETOOLONG) return problem(400, e.message);
    return problem(404, `no file ${shown} in this share`);
  }
  if (isDir(node)) return problem(400, `${shown} is a directory`);
  if (!isReg(node)) return problem(400, `${shown} is not a regular file`);

  const size = node.size;
  // ino and qid.version: the version changes with every change of content.
  const etag = `"${node.ino.toString(36)}-${node.version.toString(36)}"`;
  const name = names[names.length - 1] ?? "";
  const type = contentTypeOf(name);
  const common: Record<string, string> = {
    ETag: etag,
    "Accept-Ranges": "bytes",
    "Last-Modified": new Date(node.mtime.sec * 1000).toUTCString(),
    "Content-Type": type,
    "Content-Disposition": dispositionOf(name, type),
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
