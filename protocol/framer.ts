// Whole 9P messages out of a byte stream (TCP, a unix socket, stdio).

import { Reader } from "./buffer-reader.ts";
import { HEADER_SIZE } from "./codec.ts";
import { FramingError } from "./errors.ts";

/** Bytes of the size field that starts every message. */
const SIZE_FIELD = 4;

/**
 * Splits a byte stream into messages without concatenating chunks: a message
 * that lies whole inside a chunk is handed out as a view of that chunk; one
 * that spans chunks is copied once into a buffer of exactly its size, which
 * is allocated as soon as its size field is known. The caller must not
 * modify a chunk after pushing it (Node never reuses socket chunks).
 *
 * A size field below the 7-byte header or above the maximum (msize once it
 * is negotiated) is a FramingError: the stream cannot be resynchronised.
 */
export class Framer {
  private readonly head = new Uint8Array(SIZE_FIELD);
  private headLen = 0;
  private partial: Uint8Array | null = null;
  private filled = 0;
  private broken: FramingError | null = null;

  constructor(private maxSize: number) {}

  /** Lowers (or raises) the largest acceptable message, e.g. after Rversion. */
  setMaxSize(n: number): void {
    this.maxSize = n;
  }

  /** Bytes held for a message that has not fully arrived. */
  get pending(): number {
    return this.partial !== null ? this.filled : this.headLen;
  }

  push(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    if (this.broken) throw this.broken;
    let pos = 0;
    const end = chunk.byteLength;
    while (pos < end) {
      if (this.partial !== null) {
        const n = Math.min(this.partial.byteLength - this.filled, end - pos);
        this.partial.set(chunk.subarray(pos, pos + n), this.filled);
        this.filled += n;
        pos += n;
        if (this.filled === this.partial.byteLength) {
          const whole = this.partial;
          this.partial = null;
          emit(whole);
        }
        continue;
      }
      if (this.headLen > 0 || end - pos < SIZE_FIELD) {
        const n = Math.min(SIZE_FIELD - this.headLen, end - pos);
        this.head.set(chunk.subarray(pos, pos + n), this.headLen);
        this.headLen += n;
        pos += n;
        if (this.headLen < SIZE_FIELD) break;
        this.headLen = 0;
        this.partial = new Uint8Array(this.check(new Reader(this.head).u32()));
        this.partial.set(this.head);
        this.filled = SIZE_FIELD;
        continue;
      }
      const size = this.check(new Reader(chunk, pos).u32());
      if (end - pos >= size) {
        emit(chunk.subarray(pos, pos + size));
        pos += size;
      } else {
        this.partial = new Uint8Array(size);
        this.partial.set(chunk.subarray(pos, end));
        this.filled = end - pos;
        pos = end;
      }
    }
  }

  private check(size: number): number {
    if (size < HEADER_SIZE || size > this.maxSize) {
      this.broken = new FramingError(
        size < HEADER_SIZE
          ? `size field ${size} is smaller than the ${HEADER_SIZE}-byte header`
          : `size field ${size} exceeds the maximum message size ${this.maxSize}`,
      );
      throw this.broken;
    }
    return size;
  }
}
