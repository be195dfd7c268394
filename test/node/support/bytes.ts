// A deliberately simple byte builder for expected messages, written straight
// from the wire tables (docs in 9p-wire.md) and sharing no code with the
// codec, so the codec and its tests cannot share a bug.

export type Part = number[];

export const u8 = (v: number): Part => [v & 0xff];
export const u16 = (v: number): Part => [v & 0xff, (v >>> 8) & 0xff];
export const u32 = (v: number): Part => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
export const u64 = (v: bigint): Part => {
  const out: number[] = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((v >> (8n * i)) & 0xffn));
  return out;
};
/** A 9P string: len[2] then the raw bytes (ASCII or given bytes). */
export const s = (v: string | number[]): Part => {
  const b = typeof v === "string" ? [...v].map((c) => c.charCodeAt(0)) : v;
  return [...u16(b.length), ...b];
};
export const qid = (type: number, version: number, path: bigint): Part => [...u8(type), ...u32(version), ...u64(path)];
export const raw = (b: number[] | Uint8Array): Part => [...b];

/** size[4] type[1] tag[2] + body, size counted by hand here. */
export function msg(type: number, tag: number, ...parts: Part[]): Uint8Array {
  const body = parts.flat();
  return new Uint8Array([...u32(7 + body.length), ...u8(type), ...u16(tag), ...body]);
}
