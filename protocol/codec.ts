// Encode, decode, size and print messages, all driven by the message table.

import { Reader } from "./buffer-reader.ts";
import { Writer } from "./buffer-writer.ts";
import type { Dialect } from "./dialect.ts";
import { ERRNO } from "./errno.ts";
import { FramingError, MessageError } from "./errors.ts";
import { u8, u16, u32 } from "./kinds.ts";
import {
  type Message,
  type MessageInit,
  type MessageName,
  type MessageSpec,
  SPECS,
  nameOfId,
  specById,
  specOf,
} from "./messages.ts";
import { Shape } from "./shape.ts";

/** size[4] type[1] tag[2], in front of every message. */
export const HEADER = new Shape({ size: u32, type: u8, tag: u16 });
export const HEADER_SIZE = HEADER.fixed("9P2000");

/** Exact encoded size of a message, header included. */
export function sizeOf(msg: MessageInit, d: Dialect): number {
  return HEADER_SIZE + specIn(msg.type, d).shape.size(msg, d);
}

/** Size of a message type when every variable part is empty (Rread: 11). */
export function fixedSizeOf(name: MessageName, d: Dialect = "9P2000.L"): number {
  return HEADER_SIZE + specOf(name).shape.fixed(d);
}

/**
 * The largest fixed part of the messages that carry file data (Twrite 23,
 * Rread 11, Rreaddir 11): msize minus this is the most data one message can
 * carry in either direction.
 */
export const IO_HEADER_SIZE = Math.max(
  fixedSizeOf("Twrite"),
  fixedSizeOf("Rread"),
  fixedSizeOf("Rreaddir"),
);

/** The largest fixed part of any message of a dialect (Rgetattr, 160, in .L). */
export function largestFixedSize(d: Dialect): number {
  let n = 0;
  for (const s of SPECS) if (s.dialects.includes(d)) n = Math.max(n, HEADER_SIZE + s.shape.fixed(d));
  return n;
}

function specIn(name: MessageName, d: Dialect): MessageSpec {
  const spec = specOf(name);
  if (!spec.dialects.includes(d)) throw new TypeError(`${name} is not a ${d} message`);
  return spec;
}

/** Writes the header of a message whose total size is known. */
export function writeHeader(w: Writer, size: number, id: number, tag: number): void {
  w.u32(size);
  w.u8(id);
  w.u16(tag);
}

/**
 * Encodes a message into a buffer of exactly its size (computed from the
 * table first). Payloads are copied once, from their view into the message.
 */
export function encode(msg: MessageInit, d: Dialect): Uint8Array {
  const spec = specIn(msg.type, d);
  const size = HEADER_SIZE + spec.shape.size(msg, d);
  const w = new Writer(new Uint8Array(size));
  writeHeader(w, size, spec.id, msg.tag);
  spec.shape.write(w, msg, d);
  if (w.pos !== size) throw new Error(`${msg.type}: wrote ${w.pos} bytes, sized ${size}`);
  return w.buf;
}

/**
 * Decodes one whole message. `bytes` must be exactly one message (one
 * WebSocket message, or one frame from the Framer). Strings and payloads in
 * the result are views into `bytes`: nothing is allocated in proportion to any
 * length the message declares.
 *
 * Throws FramingError when the size field does not match what arrived (or
 * exceeds msize), MessageError (with the tag) for anything else.
 */
export function decode(bytes: Uint8Array, d: Dialect, msize = Infinity): Message {
  if (bytes.byteLength < HEADER_SIZE) {
    throw new FramingError(`message of ${bytes.byteLength} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  }
  const r = new Reader(bytes);
  const size = r.u32();
  const id = r.u8();
  const tag = r.u16();
  if (size !== bytes.byteLength) {
    throw new FramingError(`size field says ${size} bytes, ${bytes.byteLength} arrived`);
  }
  if (size > msize) throw new FramingError(`message of ${size} bytes exceeds msize ${msize}`);
  const spec = specById(id, d);
  if (spec === undefined) {
    throw new MessageError(`${nameOfId(id)} is not a ${d} message`, tag, id, ERRNO.ENOSYS);
  }
  const msg = spec.shape.read(r, d, { type: spec.name, tag }) as Message;
  if (r.failure !== null) throw new MessageError(`${spec.name}: ${r.failure}`, tag, id);
  if (r.remaining !== 0) {
    throw new MessageError(`${spec.name}: ${r.remaining} bytes after the last field`, tag, id);
  }
  return msg;
}

/** One line for logs: `Twalk tag=1 fid=0 newfid=1 nwname=["a" "b"]`. */
export function format(msg: Message | MessageInit, d: Dialect): string {
  const spec = specOf(msg.type);
  const body = spec.shape.show(msg, spec.dialects.includes(d) ? d : spec.dialects[0]!);
  return body === "" ? `${msg.type} tag=${msg.tag}` : `${msg.type} tag=${msg.tag} ${body}`;
}

/** The type number of a message from its header, without decoding it (null if too short). */
export function peekType(bytes: Uint8Array): number | null {
  return bytes.byteLength < HEADER_SIZE ? null : HEADER.read(new Reader(bytes), "9P2000").type;
}

/** The tag of a message from its header, without decoding it (null if too short). */
export function peekTag(bytes: Uint8Array): number | null {
  return bytes.byteLength < HEADER_SIZE ? null : HEADER.read(new Reader(bytes), "9P2000").tag;
}
