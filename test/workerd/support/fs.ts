// File operations over the protocol client, as a test would write them with
// syscalls: each opens its own fids and clunks them.

import { type Client, ERRNO, P9Error } from "../../../protocol/index.ts";

const enc = new TextEncoder();
const names = (path: string) => path.split("/").filter(Boolean).map((p) => enc.encode(p));

export async function walkTo(c: Client, path: string): Promise<number> {
  const fid = c.allocFid();
  const w = names(path);
  const r = await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: w });
  if (r.qids.length !== w.length) {
    c.releaseFid(fid);
    throw new P9Error(ERRNO.ENOENT, path);
  }
  return fid;
}

export async function clunk(c: Client, fid: number): Promise<void> {
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

function split(path: string): [string, string] {
  const i = path.lastIndexOf("/");
  return i < 0 ? ["", path] : [path.slice(0, i), path.slice(i + 1)];
}

/** Creates (or with O_TRUNC semantics, empties) a file and returns an open fid. */
export async function create(c: Client, path: string, mode = 0o644, flags = 2): Promise<number> {
  const [dir, name] = split(path);
  const fid = await walkTo(c, dir);
  await c.request({ type: "Tlcreate", fid, name, flags, mode: 0o100000 | mode, gid: 0 });
  return fid;
}

export async function openFile(c: Client, path: string, flags = 2): Promise<number> {
  const fid = await walkTo(c, path);
  await c.request({ type: "Tlopen", fid, flags });
  return fid;
}

export async function writeAt(c: Client, fid: number, offset: number, data: Uint8Array | string): Promise<number> {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  let done = 0;
  const chunk = c.msize - 24;
  while (done < bytes.byteLength) {
    const part = bytes.subarray(done, Math.min(bytes.byteLength, done + chunk));
    const r = await c.request({ type: "Twrite", fid, offset: BigInt(offset + done), data: part });
    done += r.count;
  }
  return done;
}

export async function readAt(c: Client, fid: number, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  while (at < length) {
    const r = await c.request({ type: "Tread", fid, offset: BigInt(offset + at), count: Math.min(length - at, c.msize - 24) });
    if (r.data.byteLength === 0) break;
    out.set(r.data, at);
    at += r.data.byteLength;
  }
  return out.subarray(0, at);
}

/** Writes a whole new file and closes it. */
export async function writeFile(c: Client, path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const fid = await create(c, path, mode);
  await writeAt(c, fid, 0, data);
  await clunk(c, fid);
}

export async function getattr(c: Client, path: string) {
  const fid = await walkTo(c, path);
  try {
    return await c.request({ type: "Tgetattr", fid, request_mask: 0x3fffn });
  } finally {
    await clunk(c, fid);
  }
}

export async function mkdir(c: Client, path: string, mode = 0o755) {
  const [dir, name] = split(path);
  const fid = await walkTo(c, dir);
  try {
    return await c.request({ type: "Tmkdir", dfid: fid, name, mode: 0o40000 | mode, gid: 0 });
  } finally {
    await clunk(c, fid);
  }
}

export async function rename(c: Client, from: string, to: string) {
  const [fd, fn] = split(from);
  const [td, tn] = split(to);
  const a = await walkTo(c, fd);
  const b = await walkTo(c, td);
  try {
    await c.request({ type: "Trenameat", olddirfid: a, oldname: fn, newdirfid: b, newname: tn });
  } finally {
    await clunk(c, a);
    await clunk(c, b);
  }
}

export async function unlink(c: Client, path: string, rmdir = false) {
  const [dir, name] = split(path);
  const fid = await walkTo(c, dir);
  try {
    await c.request({ type: "Tunlinkat", dirfid: fid, name, flags: rmdir ? 0x200 : 0 });
  } finally {
    await clunk(c, fid);
  }
}

export async function setattr(
  c: Client,
  path: string,
  a: { valid: number; mode?: number; uid?: number; gid?: number; size?: number; atime?: [number, number]; mtime?: [number, number] },
) {
  const fid = await walkTo(c, path);
  try {
    await c.request({
      type: "Tsetattr",
      fid,
      valid: a.valid,
      mode: a.mode ?? 0,
      uid: a.uid ?? 0,
      gid: a.gid ?? 0,
      size: BigInt(a.size ?? 0),
      atime_sec: BigInt(a.atime?.[0] ?? 0),
      atime_nsec: BigInt(a.atime?.[1] ?? 0),
      mtime_sec: BigInt(a.mtime?.[0] ?? 0),
      mtime_nsec: BigInt(a.mtime?.[1] ?? 0),
    });
  } finally {
    await clunk(c, fid);
  }
}

export async function cat(c: Client, path: string): Promise<Uint8Array> {
  const fid = await openFile(c, path, 0);
  try {
    const a = await c.request({ type: "Tgetattr", fid, request_mask: 0x200n });
    return await readAt(c, fid, 0, Number(a.size) + 1);
  } finally {
    await clunk(c, fid);
  }
}

export const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);
