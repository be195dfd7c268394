// Types that a session (worker/session.ts) and the rows it keeps
// (worker/session-store.ts) both speak of. They live here, apart from
// either, so that neither module imports the other for them.

/** A numbered request's reply, kept until the client has seen it (protocol/resume.ts). */
export interface KeptReply {
  seq: number;
  bytes: Uint8Array;
}
