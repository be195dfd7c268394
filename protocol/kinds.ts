// Field kinds: each knows its size, how to read and write itself, and how to
// print itself. Messages and structures are built from these in structs.ts and
// messages.ts, so every size, encoder, decoder and debug string comes from the
// one table.

import type { Reader } from "./buffer-reader.ts";
import { strLength, type Writer } from "./buffer-writer.ts";
import { MAXWELEM } from "./constants.ts";
import type { Dialect } from "./dialect.ts";

/**
 * A field type. `Out` is what decoding yields (strings stay bytes), `In` what
 * encoding accepts (strings may also be JS strings, written as UTF-8).
 */
export interface Kind<Out, In = Out> {
  readonly label: string;
  /** Bytes this kind takes when every variable part is empty. */
  fixed(d: Dialect): number;
  /** Exact encoded size of a value. */
  size(v: In, d: Dialect): number;
  read(r: Reader, d: Dialect): Out;
  write(w: Writer, v: In, d: Dialect): void;
  show(v: Out | In): string;
}

/** The value a kind decodes to. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Decoded<K> = K extends Kind<infer O, any> ? O : never;
/** The value a kind accepts for encoding. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Encodable<K> = K extends Kind<any, infer I> ? I : never;

/** A 9P string as it arrives: bytes, because names need not be UTF-8. */
export type Bytes = Uint8Array;
/** A 9P string to send. */
export type Text = string | Uint8Array;

function scalar<T>(
  label: string,
  n: number,
  read: (r: Reader) => T,
  write: (w: Writer, v: T) => void,
): Kind<T> {
  return {
    label,
    fixed: () => n,
    size: () => n,
    read,
    write,
    show: (v) => String(v),
  };
}

export const u8 = scalar<number>("u8", 1, (r) => r.u8(), (w, v) => w.u8(v));
export const u16 = scalar<number>("u16", 2, (r) => r.u16(), (w, v) => w.u16(v));
export const u32 = scalar<number>("u32", 4, (r) => r.u32(), (w, v) => w.u32(v));
export const u64 = scalar<bigint>("u64", 8, (r) => r.u64(), (w, v) => w.u64(v));

const decoder = new TextDecoder();

/** Prints a 9P string for logs: quoted, control bytes and bad UTF-8 escaped. */
export function showText(v: Text): string {
  const s = typeof v === "string" ? v : decoder.decode(v);
  return JSON.stringify(s);
}

export const str: Kind<Bytes, Text> = {
  label: "s",
  fixed: () => 2,
  size: (v) => 2 + strLength(v),
  read: (r) => r.str(),
  write: (w, v) => w.str(v),
  show: showText,
};

/**
 * count[4] then count bytes (Rread, Rreaddir, Twrite). Decoding yields a view
 * into the received message, encoding copies the view once into the reply.
 */
export const data: Kind<Bytes> = {
  label: "data",
  fixed: () => 4,
  size: (v) => 4 + v.byteLength,
  read: (r) => r.bytes(r.u32("count"), "data"),
  write: (w, v) => {
    w.u32(v.byteLength);
    w.bytes(v);
  },
  show: (v) => `<${(v as Bytes).byteLength} bytes>`,
};

/** n[2] then n items, n <= MAXWELEM (Twalk names, Rwalk qids). */
export function walkList<Out, In>(item: Kind<Out, In>, label: string): Kind<Out[], In[]> {
  return {
    label,
    fixed: () => 2,
    size: (v, d) => {
      let n = 2;
      for (const x of v) n += item.size(x, d);
      return n;
    },
    read: (r, d) => {
      const n = r.u16(label);
      // Checked before any allocation: walk(5) allows at most 16 elements.
      if (n > MAXWELEM) {
        r.fail(`${label} ${n} > ${MAXWELEM}`);
        return [];
      }
      const out: Out[] = [];
      for (let i = 0; i < n && r.failure === null; i++) out.push(item.read(r, d));
      return out;
    },
    write: (w, v, d) => {
      if (v.length > MAXWELEM) throw new RangeError(`${label}: ${v.length} > ${MAXWELEM}`);
      w.u16(v.length);
      for (const x of v) item.write(w, x, d);
    },
    show: (v) => `[${(v as (Out | In)[]).map((x) => item.show(x)).join(" ")}]`,
  };
}
