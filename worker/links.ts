// Signed links to a share's files: a browser link cannot carry an
// Authorization header, so whoever holds a token may ask for a URL that
// opens one file for a while (POST /v1/shares/:share/links). The URL carries
// its expiry and an HMAC-SHA-256 over share, path and expiry; the key is
// random, made by the share's object on first use and kept in its SQLite, so
// no operator secret is needed and the token hashes in the configuration
// (which may be public) sign nothing. An operator revokes every link of a
// share at once by rotating that key (POST /v1/shares/:share/links/rotate,
// `edge9p rotate-links`).
//
// Signed 9P URLs are the same for a share's 9P route, for clients that can
// send neither a header nor a subprotocol (v86's virtio-9p proxy opens
// `new WebSocket(url)` and nothing more): the URL carries its expiry, its
// access ("rw" or "ro") and an HMAC over share, access and expiry, with the
// same key, so the same rotation revokes them.

import { Meta } from "../storage/meta.ts";
import { fromHex, hex } from "./auth.ts";

/** The query parameters of a signed link. */
export const LINK_EXPIRES = "expires";
export const LINK_SIGNATURE = "signature";
/** A signed 9P URL's third parameter: "rw", or "ro" for a read-only session. */
export const LINK_ACCESS = "access";
export type Access = "rw" | "ro";
/** A link lives an hour unless asked otherwise, a week at most. */
export const LINK_DEFAULT_S = 3600;
export const LINK_MAX_S = 7 * 24 * 3600;

const enc = new TextEncoder();

/** What is signed: the share's name, the path as it appears in the URL (percent-encoded), the expiry. */
function message(share: string, encodedPath: string, expires: number): Uint8Array {
  return enc.encode(`edge9p-link\n${share}\n${encodedPath}\n${expires}`);
}

/**
 * What a 9P URL signs: share, access, expiry, under a first line of its own,
 * so no file link's signature is a 9P URL's (a percent-encoded path and a
 * share name hold no newline, so neither message can be made to read as
 * the other).
 */
function message9p(share: string, access: Access, expires: number): Uint8Array {
  return enc.encode(`edge9p-9p\n${share}\n${access}\n${expires}`);
}

async function hmacKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** The signature of a link, in hex. */
export async function signLink(key: Uint8Array, share: string, encodedPath: string, expires: number): Promise<string> {
  return hex(await crypto.subtle.sign("HMAC", await hmacKey(key), message(share, encodedPath, expires)));
}

/** The signature of a 9P URL, in hex. */
export async function sign9pUrl(key: Uint8Array, share: string, access: Access, expires: number): Promise<string> {
  return hex(await crypto.subtle.sign("HMAC", await hmacKey(key), message9p(share, access, expires)));
}

export type LinkCheck = "ok" | "expired" | "revoked" | "bad";

/**
 * Whether a link's signature is this share's and it has not expired at
 * `nowS`: "revoked" when it was signed with a key the share has since
 * retired (POST /links/rotate).
 */
export async function checkLink(keys: LinkKeys, share: string, encodedPath: string, expires: string, signature: string, nowS: number): Promise<LinkCheck> {
  if (!/^\d{1,12}$/.test(expires)) return "bad";
  return verified(keys, message(share, encodedPath, Number(expires)), Number(expires), signature, nowS);
}

/** checkLink for a 9P URL: its access must be "rw" or "ro", and signed. */
export async function check9pUrl(keys: LinkKeys, share: string, access: string, expires: string, signature: string, nowS: number): Promise<LinkCheck> {
  if (!/^\d{1,12}$/.test(expires) || (access !== "rw" && access !== "ro")) return "bad";
  return verified(keys, message9p(share, access, Number(expires)), Number(expires), signature, nowS);
}

async function verified(keys: LinkKeys, msg: Uint8Array, expires: number, signature: string, nowS: number): Promise<LinkCheck> {
  if (!/^[0-9a-f]{64}$/.test(signature)) return "bad";
  const sig = fromHex(signature);
  // subtle.verify compares in constant time.
  if (await crypto.subtle.verify("HMAC", await hmacKey(keys.current), sig, msg)) return expires < nowS ? "expired" : "ok";
  for (const old of keys.retired()) {
    if (await crypto.subtle.verify("HMAC", await hmacKey(old), sig, msg)) return "revoked";
  }
  return "bad";
}

export interface LinkKeys {
  current: Uint8Array;
  /** Keys retired within the last LINK_MAX_S, newest first (what they signed may not have expired yet); read only when the current key fails. */
  retired(): Uint8Array[];
}

/** Retired keys kept to name a revoked link as such; older ones' links just fail the signature. */
const RETIRED_KEPT = 16;

function retiredTable(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS link_key_retired (key BLOB NOT NULL, retired_s INTEGER NOT NULL)`);
}

/** The share's key for signed links: made on first use, kept in the object's meta table. */
export function linkKeyOf(sql: SqlStorage): Uint8Array {
  const meta = new Meta(sql);
  const v = meta.get("link_key");
  if (v !== null) return new Uint8Array(v as ArrayBuffer);
  const key = crypto.getRandomValues(new Uint8Array(32));
  meta.set("link_key", key.buffer);
  return key;
}

/** The current key and the recently retired ones. */
export function linkKeysOf(sql: SqlStorage, nowS: number): LinkKeys {
  return {
    current: linkKeyOf(sql),
    retired: () => {
      retiredTable(sql);
      return sql
        .exec(`SELECT key FROM link_key_retired WHERE retired_s >= ? ORDER BY retired_s DESC, rowid DESC LIMIT ?`, nowS - LINK_MAX_S, RETIRED_KEPT)
        .toArray()
        .map((r) => new Uint8Array(r.key as ArrayBuffer));
    },
  };
}

/**
 * Revokes every link of the share: a new key replaces the current one,
 * which is kept as retired only to say "revoked" instead of "not valid"
 * (a link lives at most LINK_MAX_S, so older retired keys are dropped).
 */
export function rotateLinkKey(sql: SqlStorage, nowS: number): void {
  retiredTable(sql);
  const old = linkKeyOf(sql);
  sql.exec(`INSERT INTO link_key_retired (key, retired_s) VALUES (?, ?)`, old.buffer, nowS);
  sql.exec(
    `DELETE FROM link_key_retired WHERE retired_s < ? OR rowid NOT IN (SELECT rowid FROM link_key_retired ORDER BY retired_s DESC, rowid DESC LIMIT ?)`,
    nowS - LINK_MAX_S,
    RETIRED_KEPT,
  );
  new Meta(sql).set("link_key", crypto.getRandomValues(new Uint8Array(32)).buffer);
}

/**
 * For a file request that came with a signed link instead of a token
 * (`link`: "EXPIRES SIGNATURE", as the worker passes it): the 403 saying
 * why the link does not open `encodedPath`, or null when it does (or when
 * there is no link: the worker checked the token).
 */
export async function refusedLink(link: string | null, keys: (nowS: number) => LinkKeys, share: string, encodedPath: string): Promise<Response | null> {
  if (link === null) return null;
  const [expires = "", signature = ""] = link.split(" ");
  const now = Math.floor(Date.now() / 1000);
  const verdict = await checkLink(keys(now), share, encodedPath, expires, signature, now);
  if (verdict === "ok") return null;
  const why = {
    expired: "this link has expired: ask for a new one",
    revoked: "this link was revoked (the share's links were rotated): ask for a new one",
    bad: "this link's signature is not valid for this file",
  }[verdict];
  return Response.json({ error: why }, { status: 403 });
}

/**
 * For a 9P upgrade that came with a signed URL instead of a token (`link`:
 * "EXPIRES ACCESS SIGNATURE", as the worker passes it): the access it
 * grants, or the 403 saying why it grants none.
 */
export async function check9pLink(link: string, keys: (nowS: number) => LinkKeys, share: string): Promise<{ access: Access } | { refused: Response }> {
  const [expires = "", access = "", signature = ""] = link.split(" ");
  const now = Math.floor(Date.now() / 1000);
  const verdict = await check9pUrl(keys(now), share, access, expires, signature, now);
  if (verdict === "ok") return { access: access as Access };
  const why = {
    expired: "this 9P URL has expired: ask for a new one",
    revoked: "this 9P URL was revoked (the share's links were rotated): ask for a new one",
    bad: `this 9P URL's signature is not valid for share ${share}`,
  }[verdict];
  return { refused: Response.json({ error: why }, { status: 403 }) };
}

/** A path of the share as a URL path: each name percent-encoded, joined by '/'. */
export function encodePath(path: string): string {
  return path
    .split("/")
    .filter(Boolean)
    .map((n) => encodeURIComponent(n))
    .join("/");
}
