// SHA-256 (FIPS 180-4), synchronous. The key of an object whose path is too
// long for R2 holds the hash of its directory's path (keys.ts), and keys are
// worked out inside synchronous namespace changes (a publish settling, a
// listing deciding what is gone), where WebCrypto's digest, a Promise, would
// let other requests interleave. Inputs are paths: a few KiB at most.
// test/node/long-keys.test.ts checks it against node:crypto.

/** The first `n` primes. */
function primes(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; out.length < n; p++) if (out.every((q) => p % q !== 0)) out.push(p);
  return out;
}

/** The first 32 bits of the fractional part of x. */
const frac32 = (x: number) => Math.floor((x - Math.floor(x)) * 2 ** 32) >>> 0;

// Section 4.2.2: K is the first 32 bits of the fractional parts of the cube
// roots of the first 64 primes; section 5.3.3: H(0) those of the square
// roots of the first 8. (Doubles carry them exactly enough: the test
// compares digests with node:crypto's.)
const P = primes(64);
const K = Uint32Array.from(P, (p) => frac32(Math.cbrt(p)));
const H0 = Uint32Array.from(P.slice(0, 8), (p) => frac32(Math.sqrt(p)));

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

export function sha256(data: Uint8Array): Uint8Array {
  // Section 5.1.1: a 1 bit, zeros, and the length in bits as 64 bits, to a multiple of 512 bits.
  const padded = new Uint8Array(Math.ceil((data.byteLength + 9) / 64) * 64);
  padded.set(data);
  padded[data.byteLength] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = data.byteLength * 8;
  view.setUint32(padded.byteLength - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(padded.byteLength - 4, bits >>> 0);
  const h = H0.slice();
  const w = new Uint32Array(64);
  // Section 6.2.2, one 512-bit block at a time (Uint32Array stores wrap modulo 2^32).
  for (let off = 0; off < padded.byteLength; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(off + 4 * t);
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15]!;
      const y = w[t - 2]!;
      const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
      const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
      w[t] = w[t - 16]! + s0 + w[t - 7]! + s1;
    }
    let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, k = h[7]!;
    for (let t = 0; t < 64; t++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t]! + w[t]!) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const r = [a, b, c, d, e, f, g, k];
    for (let i = 0; i < 8; i++) h[i] = h[i]! + r[i]!;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(4 * i, h[i]!);
  return out;
}

export function sha256Hex(data: Uint8Array): string {
  let s = "";
  for (const b of sha256(data)) s += b.toString(16).padStart(2, "0");
  return s;
}
