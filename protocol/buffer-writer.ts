/**
 * A little-endian cursor that fills a buffer allocated at the exact size of
 * the message (computed from the message table before encoding).
 */
export class Writer {
  private readonly view: DataView;
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }

  u16(v: number): void {
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
  }

  u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  u64(v: bigint): void {
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  /** A 9P string: len[2] then the bytes (a JS string is written as UTF-8). */
  str(s: string | Uint8Array): void {
    if (typeof s === "string") {
      const lenAt = this.pos;
      this.pos += 2;
      const { written } = encoder.encodeInto(s, this.buf.subarray(this.pos));
      this.view.setUint16(lenAt, written, true);
      this.pos += written;
    } else {
      this.u16(s.byteLength);
      this.bytes(s);
    }
  }
}

const encoder = new TextEncoder();

/**
 * The UTF-8 length of a JS string, as TextEncoder writes it (a lone surrogate
 * becomes U+FFFD, 3 bytes), without encoding it.
 */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Byte length of a 9P string's content. */
export function strLength(s: string | Uint8Array): number {
  return typeof s === "string" ? utf8Length(s) : s.byteLength;
}
