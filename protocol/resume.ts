// Resumable sessions (an edge9p extension; plain 9P clients never see it).
//
// The Linux client never reconnects: one transport error and every
// operation on the mount fails until it is unmounted. So the bridge keeps
// the guest's connection and resumes the session on a new WebSocket,
// replaying every request that had no reply. A replayed request must get the
// reply it got the first time, not run twice (EEXIST on a replayed create
// breaks the guest; a replayed write can undo a later one), so the gateway
// keeps the replies of "numbered" requests until the client has seen them.
//
// Both sides number requests the same way without a field on the wire: the
// n-th numbered request sent on a session is number n, counted in the order
// sent (a WebSocket keeps order). Only requests that must not run twice are
// numbered; the others (reads and queries) run again on replay, which is
// harmless: the client never saw their first answer.
//
// Handshake: the first WebSocket of a session carries `X-Edge9p-Resume: new`
// and gets back `X-Edge9p-Session` and `X-Edge9p-Secret`. A resume carries
// `X-Edge9p-Resume: <session>.<secret>`, then sends one text message, the
// ResumeHello below, then the replayed requests in their original order,
// then new ones. (The server holds binary messages that reach it before the
// hello, up to its max_inflight: workerd may deliver a socket's first binary
// message ahead of its first text one. The binary ones keep their order.)

import { MESSAGES } from "./messages.ts";

export const RESUME_HEADER = "X-Edge9p-Resume";
export const SESSION_HEADER = "X-Edge9p-Session";
export const SECRET_HEADER = "X-Edge9p-Secret";
/** How long (ms) the gateway keeps a session whose socket is gone. */
export const RESUME_WINDOW_HEADER = "X-Edge9p-Resume-Window";

/** Requests that may run again on replay: they change nothing. */
const REPLAY_SAFE = new Set<number>([
  MESSAGES.Tread.id,
  MESSAGES.Treaddir.id,
  MESSAGES.Tgetattr.id,
  MESSAGES.Treadlink.id,
  MESSAGES.Tstatfs.id,
  MESSAGES.Tgetlock.id,
  MESSAGES.Tstat.id,
]);

/** Whether a request of this type number gets a number (and a kept reply). */
export function isNumbered(type: number): boolean {
  return !REPLAY_SAFE.has(type);
}

/** The text message that opens a resumed connection. */
export interface ResumeHello {
  /** How many of the binary messages that follow are replays. */
  replay: number;
  /** The numbers of the numbered ones among them, in order. */
  seqs: number[];
  /** The number the next new numbered request will have. */
  next: number;
}

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/** Parses a ResumeHello; throws with the reason when it is not one. */
export function parseResumeHello(text: string): ResumeHello {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error("resume: the text message is not JSON");
  }
  const h = v as Partial<ResumeHello> | null;
  if (!h || !isCount(h.replay) || !isCount(h.next) || !Array.isArray(h.seqs) || !h.seqs.every(isCount)) {
    throw new Error("resume: expected {replay, seqs, next} with whole numbers");
  }
  if (h.seqs.length > h.replay) throw new Error("resume: more numbers than replayed requests");
  if (h.seqs.some((s) => s >= h.next!)) throw new Error("resume: a replayed number is not below next");
  return { replay: h.replay, seqs: h.seqs, next: h.next };
}
