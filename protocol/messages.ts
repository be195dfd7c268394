// The message table: every T- and R-message of 9P2000, 9P2000.u and 9P2000.L
// with its type number, the dialects that use it and its fields in wire order
// (after size[4] type[1] tag[2]). Encoding, decoding, exact sizes, the largest
// fixed part and debug strings all derive from this table.
//
// Sources: intro(5) and the section 5 pages of Plan 9; the 9P2000.u draft;
// Linux include/net/9p/9p.h and net/9p/client.c (per-message formats);
// diod protocol.md. Footnotes in docs/9p-wire.md where they disagree.
//
// Four wire fields named "type" (Rstatfs, Tlock, Tgetlock, Rgetlock) are
// called fs_type/lock_type here, because `type` names the message itself.

import { ALL, type Dialect, DOTL, DOTU, LEGACY, UNIX } from "./dialect.ts";
import { data, str, u8, u16, u32, u64 } from "./kinds.ts";
import { type InOf, only, type OutOf, Shape, type ShapeInit } from "./shape.ts";
import { nstat, qid, qids, wnames } from "./structs.ts";

interface Spec<S extends ShapeInit> {
  readonly id: number;
  readonly dialects: readonly Dialect[];
  readonly shape: Shape<S>;
}

function m<S extends ShapeInit>(id: number, dialects: readonly Dialect[], init: S): Spec<S> {
  return { id, dialects, shape: new Shape(init) };
}

const none = {};
const fid = u32;

export const MESSAGES = {
  // 9P2000 core, shared by all dialects unless narrowed.
  Tversion: m(100, ALL, { msize: u32, version: str }),
  Rversion: m(101, ALL, { msize: u32, version: str }),
  // .u and .L add n_uname (9p-wire.md footnote 6).
  Tauth: m(102, ALL, { afid: fid, uname: str, aname: str, n_uname: only(UNIX, u32) }),
  Rauth: m(103, ALL, { aqid: qid }),
  Tattach: m(104, ALL, { fid, afid: fid, uname: str, aname: str, n_uname: only(UNIX, u32) }),
  Rattach: m(105, ALL, { qid }),
  Rerror: m(107, LEGACY, { ename: str, errno: only(DOTU, u32) }),
  Tflush: m(108, ALL, { oldtag: u16 }),
  Rflush: m(109, ALL, none),
  Twalk: m(110, ALL, { fid, newfid: fid, wnames }),
  Rwalk: m(111, ALL, { qids }),
  Topen: m(112, LEGACY, { fid, mode: u8 }),
  Ropen: m(113, LEGACY, { qid, iounit: u32 }),
  Tcreate: m(114, LEGACY, { fid, name: str, perm: u32, mode: u8, extension: only(DOTU, str) }),
  Rcreate: m(115, LEGACY, { qid, iounit: u32 }),
  Tread: m(116, ALL, { fid, offset: u64, count: u32 }),
  Rread: m(117, ALL, { data }),
  Twrite: m(118, ALL, { fid, offset: u64, data }),
  Rwrite: m(119, ALL, { count: u32 }),
  Tclunk: m(120, ALL, { fid }),
  Rclunk: m(121, ALL, none),
  Tremove: m(122, ALL, { fid }),
  Rremove: m(123, ALL, none),
  Tstat: m(124, LEGACY, { fid }),
  Rstat: m(125, LEGACY, { stat: nstat }),
  Twstat: m(126, LEGACY, { fid, stat: nstat }),
  Rwstat: m(127, LEGACY, none),

  // 9P2000.L
  Rlerror: m(7, DOTL, { ecode: u32 }),
  Tstatfs: m(8, DOTL, { fid }),
  Rstatfs: m(9, DOTL, {
    fs_type: u32,
    bsize: u32,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    fsid: u64,
    namelen: u32,
  }),
  Tlopen: m(12, DOTL, { fid, flags: u32 }),
  Rlopen: m(13, DOTL, { qid, iounit: u32 }),
  Tlcreate: m(14, DOTL, { fid, name: str, flags: u32, mode: u32, gid: u32 }),
  Rlcreate: m(15, DOTL, { qid, iounit: u32 }),
  Tsymlink: m(16, DOTL, { fid, name: str, symtgt: str, gid: u32 }),
  Rsymlink: m(17, DOTL, { qid }),
  Tmknod: m(18, DOTL, { dfid: fid, name: str, mode: u32, major: u32, minor: u32, gid: u32 }),
  Rmknod: m(19, DOTL, { qid }),
  Trename: m(20, DOTL, { fid, dfid: fid, name: str }),
  Rrename: m(21, DOTL, none),
  Treadlink: m(22, DOTL, { fid }),
  Rreadlink: m(23, DOTL, { target: str }),
  Tgetattr: m(24, DOTL, { fid, request_mask: u64 }),
  Rgetattr: m(25, DOTL, {
    valid: u64,
    qid,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    size: u64,
    blksize: u64,
    blocks: u64,
    atime_sec: u64,
    atime_nsec: u64,
    mtime_sec: u64,
    mtime_nsec: u64,
    ctime_sec: u64,
    ctime_nsec: u64,
    btime_sec: u64,
    btime_nsec: u64,
    gen: u64,
    data_version: u64,
  }),
  // valid is 4 bytes here, 8 in Rgetattr (Linux client.c "ddddddqqqqq").
  Tsetattr: m(26, DOTL, {
    fid,
    valid: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    atime_sec: u64,
    atime_nsec: u64,
    mtime_sec: u64,
    mtime_nsec: u64,
  }),
  Rsetattr: m(27, DOTL, none),
  Txattrwalk: m(30, DOTL, { fid, newfid: fid, name: str }),
  Rxattrwalk: m(31, DOTL, { size: u64 }),
  Txattrcreate: m(32, DOTL, { fid, name: str, attr_size: u64, flags: u32 }),
  Rxattrcreate: m(33, DOTL, none),
  Treaddir: m(40, DOTL, { fid, offset: u64, count: u32 }),
  Rreaddir: m(41, DOTL, { data }),
  // datasync[4] as in Linux, QEMU and diod protocol.md (9p-wire.md footnote 1).
  Tfsync: m(50, DOTL, { fid, datasync: u32 }),
  Rfsync: m(51, DOTL, none),
  Tlock: m(52, DOTL, {
    fid,
    lock_type: u8,
    flags: u32,
    start: u64,
    length: u64,
    proc_id: u32,
    client_id: str,
  }),
  Rlock: m(53, DOTL, { status: u8 }),
  Tgetlock: m(54, DOTL, { fid, lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: str }),
  Rgetlock: m(55, DOTL, { lock_type: u8, start: u64, length: u64, proc_id: u32, client_id: str }),
  Tlink: m(70, DOTL, { dfid: fid, fid, name: str }),
  Rlink: m(71, DOTL, none),
  Tmkdir: m(72, DOTL, { dfid: fid, name: str, mode: u32, gid: u32 }),
  Rmkdir: m(73, DOTL, { qid }),
  Trenameat: m(74, DOTL, { olddirfid: fid, oldname: str, newdirfid: fid, newname: str }),
  Rrenameat: m(75, DOTL, none),
  Tunlinkat: m(76, DOTL, { dirfid: fid, name: str, flags: u32 }),
  Runlinkat: m(77, DOTL, none),
} as const;

type Table = typeof MESSAGES;
type ShapeOf<N extends MessageName> = Table[N] extends Spec<infer S> ? S : never;

export type MessageName = keyof Table;
export type TName = Extract<MessageName, `T${string}`>;
export type RName = Extract<MessageName, `R${string}`>;

/** A decoded message of a given type: strings and payloads are byte views. */
export type Msg<N extends MessageName> = { type: N; tag: number } & OutOf<ShapeOf<N>>;
/** A message of a given type, ready to encode: strings may be JS strings. */
export type MsgInit<N extends MessageName> = { type: N; tag: number } & InOf<ShapeOf<N>>;

export type Message = { [N in MessageName]: Msg<N> }[MessageName];
export type MessageInit = { [N in MessageName]: MsgInit<N> }[MessageName];
export type Request = { [N in TName]: Msg<N> }[TName];
export type Reply = { [N in RName]: Msg<N> }[RName];

/** The reply type of a request type: R type = T type + 1 (intro(5)). */
export type ReplyName<T extends TName> = T extends `T${infer Rest}` ? Extract<`R${Rest}`, RName> : never;

export interface MessageSpec {
  readonly name: MessageName;
  readonly id: number;
  readonly dialects: readonly Dialect[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly shape: Shape<any>;
}

export const SPECS: readonly MessageSpec[] = Object.entries(MESSAGES).map(([name, s]) => ({
  name: name as MessageName,
  id: s.id,
  dialects: s.dialects,
  shape: s.shape,
}));

/** spec by type number, per dialect: a dialect rejects numbers it does not use. */
const byId: Record<Dialect, (MessageSpec | undefined)[]> = {
  "9P2000": new Array(256),
  "9P2000.u": new Array(256),
  "9P2000.L": new Array(256),
};
const byName = new Map<MessageName, MessageSpec>();
for (const spec of SPECS) {
  byName.set(spec.name, spec);
  for (const d of spec.dialects) byId[d][spec.id] = spec;
}

export function specById(id: number, d: Dialect): MessageSpec | undefined {
  return byId[d][id];
}

export function specOf(name: MessageName): MessageSpec {
  const s = byName.get(name);
  if (s === undefined) throw new TypeError(`unknown message ${String(name)}`);
  return s;
}

/** The name of a type number in any dialect, for logs ("type 200" if none). */
export function nameOfId(id: number): string {
  for (const d of ["9P2000.L", "9P2000.u"] as const) {
    const s = byId[d][id];
    if (s) return s.name;
  }
  return `type ${id}`;
}
