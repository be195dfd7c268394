// The three kinds of failure the protocol layer reports.

import { ERRNO, errnoName, errnoText } from "./errno.ts";

/**
 * The byte stream or message boundary is broken (a size field that does not
 * match what arrived, a message shorter than its header or larger than
 * msize). No reply can be trusted to reach the right request: the connection
 * ends.
 */
export class FramingError extends Error {
  override readonly name = "FramingError";
}

/**
 * One message is malformed or not understood, but its boundary is sound. When
 * the header could be read, `tag` lets the server answer on that tag with
 * `errno` and carry on with the session.
 */
export class MessageError extends Error {
  override readonly name = "MessageError";
  constructor(
    message: string,
    /** The tag, or null when the header itself could not be read. */
    readonly tag: number | null,
    /** The type number, or null when the header itself could not be read. */
    readonly typeId: number | null,
    /** The errno to answer with: EINVAL for bad fields, ENOSYS for unknown types. */
    readonly errno: number = ERRNO.EINVAL,
  ) {
    super(message);
  }
}

/** V8's knob (Node, workerd, Chromium); elsewhere setting it does nothing. */
const V8Error = Error as { stackTraceLimit?: number };

/**
 * A 9P error with a Linux errno: thrown by request handlers to become an
 * Rlerror/Rerror, and by the client when a server answers with one.
 */
export class P9Error extends Error {
  override readonly name = "P9Error";
  readonly code: string;
  constructor(
    readonly errno: number,
    message?: string,
  ) {
    // No stack trace: these are answers, not bugs (ENOENT is the commonest
    // reply to a build's lookups), and V8's capture was 13% of the object's
    // CPU in a lookup storm (bench: walk + getattr + clunk).
    const limit = V8Error.stackTraceLimit;
    V8Error.stackTraceLimit = 0;
    super(message ?? errnoText(errno));
    V8Error.stackTraceLimit = limit;
    this.code = errnoName(errno);
  }
}
