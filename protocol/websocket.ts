// What the gateway and its clients agree on over the WebSocket, beside the
// 9P messages themselves: the subprotocols, the close codes, and the
// acknowledgements that let the gateway bound what a client leaves unread.

/** The subprotocol of 9P over WebSocket: one binary message is one 9P message. */
export const SUBPROTOCOL = "9p";

/**
 * 9P plus read acknowledgements (an edge9p extension). workerd gives a
 * Durable Object no way to see how many sent bytes still wait on a socket
 * (no bufferedAmount; `send` copies into an unbounded queue: web-socket.h),
 * so a client that never reads could make the gateway hold every reply it
 * asks for. A client that offers this subprotocol (the bridge, the CLI, the
 * share browser) and is given it gets a text message `mark NONCE` after
 * every few megabytes of replies and answers `ack NONCE` once it has read
 * the mark. A WebSocket keeps order, so the ack proves that everything sent
 * before the mark has left the gateway, and the nonce, random and seen only
 * in the stream, cannot be acknowledged before it is read. Plain 9P clients
 * (offering only "9p") prove it by using a tag again: 9P frees a tag only
 * once its reply arrived (intro(5)).
 */
export const ACK_SUBPROTOCOL = "9p.ack";

/**
 * A token offered as a subprotocol, `edge9p-token.<token>` beside "9p":
 * browsers cannot set headers on a WebSocket (worker/auth.ts reads it).
 */
export const TOKEN_SUBPROTOCOL_PREFIX = "edge9p-token.";

const MARK = "mark ";
const ACK = "ack ";
const NONCE = /^[0-9a-f]{16}$/;

/** The gateway's mark: a nonce after the replies it covers. */
export function markText(nonce: string): string {
  return MARK + nonce;
}

/** The nonce of a mark, or null when the text is not one. */
export function parseMark(text: string): string | null {
  const n = text.startsWith(MARK) ? text.slice(MARK.length) : "";
  return NONCE.test(n) ? n : null;
}

/** The client's answer to a mark it has read. */
export function ackText(nonce: string): string {
  return ACK + nonce;
}

/** The nonce an ack answers, or null when the text is not one. */
export function parseAck(text: string): string | null {
  const n = text.startsWith(ACK) ? text.slice(ACK.length) : "";
  return NONCE.test(n) ? n : null;
}

/**
 * WebSocket close codes the gateway uses (RFC 6455 section 7.4; 4000-4999
 * are the application's). A client that sees one knows why its session ended.
 */
export const CLOSE = {
  /** Normal end (also the answer to a client's close with a reserved code). */
  NORMAL: 1000,
  /** The message's size field does not match the message: framing is lost. */
  PROTOCOL: 1002,
  /** A text message that is not part of the protocol: 9P messages are binary. */
  UNSUPPORTED: 1003,
  /** A message larger than the negotiated msize. */
  TOO_BIG: 1009,
  /** The gateway hit an internal error on this socket. */
  INTERNAL: 1011,
  /** A request before Tversion. */
  NO_VERSION: 4000,
  /** The session's state is gone (the share's object was reset): reconnect. */
  SESSION_LOST: 4001,
  /** The session was idle past the configured timeout. */
  IDLE: 4002,
  /** A resume was refused: no such session (ended, or never existed), or a wrong secret. */
  RESUME_REFUSED: 4003,
  /** The session was resumed on another connection; this one is stale. */
  REPLACED: 4004,
  /** An operator closed the share's sockets (sessions that can resume do). */
  DRAIN: 4005,
  /** The client left its replies unread past the session's window (EDGE9P.session_window_bytes). */
  NOT_READING: 4006,
  /** The session was opened through a signed 9P URL, and the share's links were rotated (revoked). */
  REVOKED: 4007,
} as const;

/**
 * RFC 6455 close codes a client meets that the gateway never chooses: the
 * platform's or the network's (a restart, a proxy, a dropped connection).
 * NO_STATUS, ABNORMAL and TLS never travel in a close frame: a WebSocket
 * reports them for a close without a code, without a close frame, or after
 * a failed TLS handshake, so an endpoint that answers a close sends NORMAL
 * in their place.
 */
export const PEER_CLOSE = {
  GOING_AWAY: 1001,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  TLS: 1015,
} as const;
