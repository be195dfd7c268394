// WebSocket close codes the gateway uses (RFC 6455 section 7.4; 4000-4999 are
// the application's). A client that sees one knows why its session ended.

export const CLOSE = {
  /** Normal end (also the answer to a client's close with a reserved code). */
  NORMAL: 1000,
  /** The message's size field does not match the message: framing is lost. */
  PROTOCOL: 1002,
  /** A text message: 9P messages are binary. */
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
} as const;
