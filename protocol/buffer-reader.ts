/**
 * A little-endian cursor over one received message.
 *
 * Reads never throw and never allocate in proportion to a length they were
 * given: a read past the end returns zero (or an empty view) and sets a sticky
 * failure that the decoder checks once, after the whole message. Byte strings
 * and payloads are views into the received buffer, never copies.
 */
export class Reader {
  private readonly view: DataView;
  private pos: number;
  private readonly end: number;
  /** The first thing that went wrong, or null. */
  failure: string | null = null;

  constructor(private readonly buf: Uint8Array, start = 0) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = buf.byteLength;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Records the first failure; later ones would only be consequences of it. */
  fail(reason: string): void {
    if (this.failure === null) this.failure = reason;
  }

  private take(n: number, what: string): number {
    const at = this.pos;
    if (this.failure !== null) return -1;
    if (n > this.end - at) {
      this.fail(`${what} needs ${n} bytes, ${this.end - at} left`);
      this.pos = this.end;
      return -1;
    }
    this.pos = at + n;
    return at;
  }

  u8(what = "u8"): number {
    const at = this.take(1, what);
    return at < 0 ? 0 : this.view.getUint8(at);
  }

  u16(what = "u16"): number {
    const at = this.take(2, what);
    return at < 0 ? 0 : this.view.getUint16(at, true);
  }

  u32(what = "u32"): number {
    const at = this.take(4, what);
    return at < 0 ? 0 : this.view.getUint32(at, true);
  }

  u64(what = "u64"): bigint {
    const at = this.take(8, what);
    return at < 0 ? 0n : this.view.getBigUint64(at, true);
  }

  /** A view of the next n bytes (n was checked against what is left first). */
  bytes(n: number, what = "bytes"): Uint8Array {
    const at = this.take(n, what);
    return at < 0 ? EMPTY : this.buf.subarray(at, at + n);
  }

  /** A 9P string, len[2] then len bytes, kept as bytes: names need not be UTF-8. */
  str(what = "string"): Uint8Array {
    return this.bytes(this.u16(what), what);
  }
}

const EMPTY = new Uint8Array(0);
