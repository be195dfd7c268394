// Bearer tokens per share. The configuration holds SHA-256 digests of the
// tokens; a request's token is hashed and compared with each in constant
// time. Tokens come in `Authorization: Bearer <token>` or, from browsers
// (which cannot set headers on a WebSocket), as the subprotocol
// `edge9p-token.<token>` offered beside `9p`. Tokens are hex or base64url,
// characters a subprotocol may hold. The operator's token (for drain,
// check, stats and link rotation) is checked the same way against
// operator_token_hashes.

import { TOKEN_SUBPROTOCOL_PREFIX } from "../protocol/index.ts";
import type { Config, ShareConfig } from "./config.ts";

const TOKEN_CHARS = /^[A-Za-z0-9_-]{16,256}$/;

export type AuthResult = "open" | "ok" | "missing" | "malformed" | "wrong";

/** The token a request carries, if any. */
export function tokenOf(req: Request): string | null {
  const h = req.headers.get("Authorization");
  if (h) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m ? m[1]! : "";
  }
  for (const p of (req.headers.get("Sec-WebSocket-Protocol") ?? "").split(",")) {
    const v = p.trim();
    if (v.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return v.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
  }
  return null;
}

/** Bytes as lower-case hex. */
export function hex(b: ArrayBuffer): string {
  return [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Hex (even length, checked by the caller) as bytes. */
export function fromHex(h: string): Uint8Array {
  return new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

/** `bytes` random bytes in hex: a secret a header or subprotocol can carry. */
export function randomHex(bytes: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)).buffer as ArrayBuffer);
}

export async function sha256Hex(token: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
}

/** Equal-length byte comparison whose time does not depend on where they differ. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const subtle = crypto.subtle as SubtleCrypto & { timingSafeEqual?: (a: ArrayBufferView, b: ArrayBufferView) => boolean };
  if (a.byteLength !== b.byteLength) return false;
  if (subtle.timingSafeEqual) return subtle.timingSafeEqual(a, b);
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Equal strings, compared in constant time (for secrets' digests). */
export function sameText(a: string, b: string): boolean {
  const e = new TextEncoder();
  return sameBytes(e.encode(a), e.encode(b));
}

/** Whether `token` hashes to one of `hashes`: every hash compared (no early exit), each in constant time. */
async function matches(hashes: readonly string[], token: string): Promise<boolean> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  let ok = false;
  for (const h of hashes) {
    if (sameBytes(digest, fromHex(h))) ok = true;
  }
  return ok;
}

/** Whether a request may open a share. */
export async function authorize(share: ShareConfig, req: Request): Promise<AuthResult> {
  if (share.token_hashes.length === 0) return "open";
  const token = tokenOf(req);
  if (token === null) return "missing";
  if (!TOKEN_CHARS.test(token)) return "malformed";
  return (await matches(share.token_hashes, token)) ? "ok" : "wrong";
}

export type OperatorResult = "ok" | "none configured" | "missing" | "wrong";

/**
 * Whether a request carries the gateway's operator token, in
 * `Authorization: Bearer` only (the operator routes are plain HTTP). A
 * share's token is not one: reading a share is no licence to cut off its
 * sessions or revoke its links.
 */
export async function authorizeOperator(config: Config, req: Request): Promise<OperatorResult> {
  if (config.operator_token_hashes.length === 0) return "none configured";
  const h = req.headers.get("Authorization");
  if (!h) return "missing";
  const token = /^Bearer\s+(\S+)\s*$/i.exec(h)?.[1];
  if (!token || !TOKEN_CHARS.test(token)) return "wrong";
  return (await matches(config.operator_token_hashes, token)) ? "ok" : "wrong";
}
