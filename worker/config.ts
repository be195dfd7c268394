// The gateway's configuration: the EDGE9P variable of wrangler.toml, parsed
// once per isolate with zod. Workers have no start-up phase, so a bad
// configuration is reported by every request (500, naming the field) and by
// `npm run check`, which runs in `npm test` and before deploy.
//
// Pure: no cloudflare:* import, so the check command runs it in Node.

import { z } from "zod";
import { MIN_MSIZE, PLATFORM_MSIZE_CEILING } from "../protocol/index.ts";
import { MAX_OBJECT, MAX_PARTS } from "../storage/r2-limits.ts";

const MiB = 1 << 20;
/**
 * Of a Durable Object's 10 GB of SQLite (docs/platform.md), what the write
 * journal and the content cache may take together: 1 GB stays for the
 * namespace, sessions, locks and SQLite's own pages.
 */
const STORAGE_FOR_CONTENT = 9_000_000_000;
/** The content cache's size when none is configured (and the journal's cap leaves room for it). */
const DEFAULT_CACHE_BYTES = 1024 * MiB;

/** How long a resumable session outlives its socket when EDGE9P.resume_window_ms is not set (ms). */
export const DEFAULT_RESUME_WINDOW_MS = 300_000;

/** Share names appear in URLs and logs. */
const shareName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, "share names are 1-63 of a-z 0-9 . _ -, starting with a letter or digit");

const prefix = z
  .string()
  // Bytes, not characters: a derived key (storage/keys.ts) is the prefix and at most 335 bytes more.
  .refine((p) => new TextEncoder().encode(p).byteLength <= 512, "at most 512 bytes, so that paths under it still fit R2's 1024-byte keys")
  .refine((p) => !p.startsWith("/"), "no leading '/': R2 keys have no root")
  .refine(
    (p) => p === "" || p.replace(/\/$/, "").split("/").every((s) => s !== "" && s !== "." && s !== ".."),
    "segments must be non-empty and not '.' or '..'",
  )
  // Stored without a trailing slash; "" is the whole bucket.
  .transform((p) => p.replace(/\/$/, ""));

const id = z.number().int().min(0).max(0xfffffffe);
const tokenHash = z.string().regex(/^[0-9a-f]{64}$/, "a SHA-256 digest in lower-case hex");

/**
 * The secret that may hold token hashes instead of (or beside) the
 * configuration, so a configuration kept in a public repository names none:
 * JSON {"SHARE": ["sha256 hex", ...]}, set with `wrangler secret put`.
 */
export const TOKENS_SECRET = "EDGE9P_TOKENS";
const TokensSchema = z.record(shareName, z.array(tokenHash));
/**
 * The secret that may hold the operator token's hashes (beside
 * operator_token_hashes): JSON ["sha256 hex", ...].
 */
export const OPERATOR_TOKENS_SECRET = "EDGE9P_OPERATOR_TOKENS";
const OperatorTokensSchema = z.array(tokenHash);

/** An origin as a browser sends it in `Origin`: scheme, host and port, nothing else. */
const origin = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.origin === s;
  } catch {
    return false;
  }
}, "an origin: http(s)://HOST[:PORT] in lower case, with no path");

/** A host name as it appears in a request's URL, without the port. */
const hostName = z
  .string()
  .regex(/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)$/, "a host name (or [IPv6] or IPv4 address) in lower case, without a port");
const perm = z.number().int().min(0).max(0o7777);

export const ShareSchema = z.strictObject({
  /** The R2 binding (an [[r2_buckets]] binding of wrangler.toml). */
  binding: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an R2 binding name"),
  /** The bucket's name, as in [[r2_buckets]] bucket_name: it names the share's Durable Object. */
  bucket: z.string().min(3).max(63),
  /** Key prefix: the file a/b.txt is the object `<prefix>/a/b.txt` ("" = the bucket's root). */
  prefix: prefix.default(""),
  read_only: z.boolean().default(false),
  /**
   * SHA-256 hex digests of the bearer tokens that may open the share
   * (`npx edge9p token` makes one). With none, the share is open to anyone
   * who can reach the gateway: allowed on a deployed gateway only with public.
   */
  token_hashes: z.array(tokenHash).default([]),
  /** A deployed gateway serves a share without tokens only when it says so. */
  public: z.boolean().default(false),
  /** Owner, group and permissions of objects that carry no such metadata. */
  uid: id.default(0),
  gid: id.default(0),
  file_mode: perm.default(0o644),
  dir_mode: perm.default(0o755),
  /**
   * Whether clients that speak plain 9P (subprotocol "9p" alone, or none, as
   * browser VMs offer) may open the share. They show they read their replies
   * only by using tags again, which a hostile client can fake, so only
   * "9p.ack" clients (the bridge, the CLI, the share browser) are held to a
   * bound they cannot cheat (worker/outbox.ts). "signed": only through a
   * signed 9P URL (POST .../links {"kind": "9p"}), so only clients that a
   * token holder sent one to, until it expires or the links are rotated.
   * Unset: allowed on a local gateway, refused on a deployed one.
   */
  plain_9p: z.union([z.boolean(), z.literal("signed")]).optional(),
  /**
   * Whether clients may make block and character devices here (Tmknod,
   * 9P2000.u Tcreate with DMDEVICE); false answers EPERM. A device node made
   * by one client opens that device on whichever guest uses it: one guest's
   * root could hand another guest's users its disks or /dev/mem, unless that
   * guest mounts with nodev. Unset: allowed on a local gateway (one
   * developer's guests, trusted as the user), refused on a deployed one
   * (whose clients are not trusted).
   */
  device_nodes: z.boolean().optional(),
});

export const ConfigSchema = z
  .strictObject({
    /**
     * This gateway is on the public internet (set it where you deploy): a
     * share there needs token_hashes or public = true.
     */
    deployed: z.boolean().default(false),
    shares: z
      .record(shareName, ShareSchema)
      .refine((s) => Object.keys(s).length > 0, "configure at least one share"),
    /** The operator's msize cap (9P msize is min(client, 32 MiB platform ceiling, this)). */
    msize_cap: z.number().int().min(MIN_MSIZE).max(PLATFORM_MSIZE_CEILING).default(4 * MiB),
    /** Bytes of replies a share's object may hold at once (the isolate has 128 MB). */
    inflight_bytes: z.number().int().min(MIN_MSIZE).max(96 * MiB).default(64 * MiB),
    /** How long a directory listing imported from R2 is trusted before it is listed again. */
    dir_revalidate_ms: z.number().int().min(0).max(86_400_000).default(10_000),
    /**
     * iounit in Rlopen: "zero" lets Linux use msize - 24 per request;
     * "aligned" gives a multiple of 4 KiB, avoiding the 24-byte tail requests.
     */
    iounit: z.enum(["zero", "aligned"]).default("aligned"),
    /** Size reported by statfs (df). */
    quota_bytes: z.number().int().min(0).default(2 ** 40),
    /**
     * Journal bytes (written, not yet published) a share may hold before
     * writes answer ENOSPC. The object's storage holds 10 GB in all. A hole
     * (a truncate up, a write past the end) counts too: its publish uploads
     * the zeros, so a truncate that would pass the cap answers ENOSPC.
     */
    journal_cap_bytes: z.number().int().min(MiB).max(8 * 1024 * MiB).default(4 * 1024 * MiB),
    /**
     * The largest file: a truncate or write past it answers EFBIG (as past
     * Linux's s_maxbytes). Well above what a share is written with, and
     * within what the publisher uploads: at most 10,000 parts, each held in
     * memory within inflight_bytes (so at most 10,000 x inflight_bytes), and
     * R2's largest object (4.995 TiB).
     */
    max_file_bytes: z.number().int().min(1).max(MAX_OBJECT).default(256 * 1024 * MiB),
    /** How long after its last close a file is published to R2. */
    publish_delay_ms: z.number().int().min(0).max(3_600_000).default(2000),
    /** Files larger than this are published with a multipart upload (parts of 5 MiB or more). */
    multipart_threshold: z.number().int().min(5 * MiB).max(64 * MiB).default(16 * MiB),
    /** Sessions (sockets) a share accepts at once; more are refused with 503. */
    max_sessions: z.number().int().min(1).max(32_768).default(1024),
    /** Fids one session may hold; a request that would exceed it answers EMFILE. */
    max_fids: z.number().int().min(16).max(1_000_000).default(65_536),
    /** Requests of one session in flight at once; more answer EAGAIN. */
    max_inflight: z.number().int().min(1).max(65_535).default(1024),
    /** Fids all sessions of a share may hold together; past it a walk or attach answers ENFILE. */
    max_share_fids: z.number().int().min(16).max(4_000_000).default(262_144),
    /**
     * Reply bytes one socket may leave unread (sent, and not shown read:
     * worker/outbox.ts). Reads wait for room; a socket that stays past it is
     * closed with 4006. A reply larger than this still goes, alone.
     */
    session_window_bytes: z.number().int().min(64 * 1024).max(96 * MiB).default(8 * MiB),
    /** How long reads may wait for room with nothing read meanwhile before the socket is closed (4006). */
    session_stall_ms: z.number().int().min(100).max(3_600_000).default(60_000),
    /** Bytes of xattr buffers (values read or being written) one session may hold; past it ENOMEM or ENOSPC. */
    max_xattr_bytes: z.number().int().min(64 * 1024).max(16 * MiB).default(MiB),
    /**
     * Resumable sessions that may wait for their clients at once; past it the
     * one waiting longest ends. A deploy detaches every session at once, so
     * keep it at the number of bridges you expect. They count toward
     * max_sessions too.
     */
    max_detached_sessions: z.number().int().min(0).max(32_768).default(1024),
    /** Directory levels below the share's root; a deeper mkdir or rename answers ENAMETOOLONG. */
    max_depth: z.number().int().min(1).max(4096).default(256),
    /**
     * POSIX lock entries one session may hold over all files; a Tlock that
     * would add more (an unlock that splits a range adds one) answers ENOLCK.
     */
    max_locks_per_session: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Lock entries one file may carry over all sessions; past it ENOLCK. */
    max_locks_per_inode: z.number().int().min(1).max(1_000_000).default(20_000),
    /**
     * Lock entries the share holds in all, every session and file: they live
     * in the object's memory (about 200 bytes each, with a short client_id)
     * as well as in SQLite; past it ENOLCK.
     */
    max_locks: z.number().int().min(1).max(1_000_000).default(50_000),
    /** Sessions with no request for this long are closed (0 = never: idle sockets cost nothing while hibernated). */
    idle_timeout_ms: z.number().int().min(0).default(0),
    /**
     * How long a resumable session (`edge9p bridge`) outlives its socket,
     * keeping its fids, locks and kept replies for the client to come back:
     * a deploy or a network change takes seconds.
     */
    resume_window_ms: z.number().int().min(0).max(86_400_000).default(DEFAULT_RESUME_WINDOW_MS),
    /**
     * Whether the share's object grants leases (docs/leases.md) to clients
     * that ask on the upgrade (X-Edge9p-Leases: 1, as edge9p bridge does).
     */
    leases: z.boolean().default(true),
    /**
     * How long a lease holds without a renew (ms), and so the longest a
     * client that never acks, or is cut off, delays another's change (once).
     * 10 s: a bridge renews a few times a term over any WAN, and a change
     * stalled by a lost bridge still answers well within a Linux client's
     * patience (it never times a request out).
     */
    lease_term_ms: z.number().int().min(1000).max(120_000).default(10_000),
    /**
     * Leases one socket may hold at once; past it nothing new is granted
     * until the client releases some (each is a few dozen bytes of the
     * object's memory).
     */
    lease_max_per_session: z.number().int().min(0).max(1_000_000).default(4096),
    /**
     * GET /v1/shares (and the page at "/") name the shares to anyone who
     * reaches the gateway; false keeps the names to those who know them.
     */
    list_shares: z.boolean().default(true),
    /**
     * The largest readahead window: a file read sequentially through one fid
     * gets up to this many bytes past the reader fetched from R2 before it
     * asks (the window starts at one read and doubles with each sequential
     * read). Held in inflight_bytes, never its last half; 0 turns it off.
     * Unset: 16 MiB, or half of inflight_bytes if less.
     */
    readahead_bytes: z.number().int().min(0).max(48 * MiB).optional(),
    /**
     * Bytes of small files' content the share's object keeps in its SQLite
     * (by key and etag, least recently used out first), so a second read
     * costs no R2 call. The object's storage holds 10 GB in all: with the
     * write journal's cap, at most 9 GB (STORAGE_FOR_CONTENT). Unset: 1 GiB,
     * or what the journal's cap leaves of those 9 GB if less; 0 turns it off.
     */
    content_cache_bytes: z.number().int().min(0).max(8 * 1024 * MiB).optional(),
    /**
     * The largest file the content cache keeps (a read of one reads all of
     * it, held in inflight_bytes meanwhile). Unset: 1 MiB, or half of
     * inflight_bytes if less.
     */
    content_cache_file_bytes: z.number().int().min(0).max(32 * MiB).optional(),
    /**
     * Development only: every R2 call's answer is held this long (ms), to
     * judge the gateway locally as R2 at a distance makes it (storage/latency.ts).
     * A deployed gateway refuses it: there R2 is already at a distance.
     */
    r2_latency_ms: z.number().int().min(0).max(10_000).default(0),
    /** Development only, with r2_latency_ms: the bytes per second an R2 call's body moves at (0: no limit). */
    r2_bandwidth_bytes: z.number().int().min(0).default(0),
    /**
     * Origins besides the gateway's own whose web pages may open a share's
     * WebSocket and POST (a proxy's public address, say). A request with any
     * other Origin is refused (403): a page elsewhere would otherwise drive
     * an open share, or a token the user typed into it, from its own script.
     */
    allowed_origins: z.array(origin).default([]),
    /**
     * Host names this gateway answers for (421 for any other: DNS
     * rebinding). A local gateway also answers for loopback addresses and
     * localhost; a deployed one with no allowed_hosts and no base_url for
     * any name the platform routes to it (Cloudflare picks the worker by
     * that name, so a rebinding name never reaches it).
     */
    allowed_hosts: z.array(hostName).default([]),
    /**
     * The gateway's public address (http(s)://HOST[:PORT], no path): links
     * from POST /links are built on it, its origin counts as the gateway's
     * own and its host is answered for. "" builds links on the request's
     * (checked) Host.
     */
    base_url: z.union([z.literal(""), origin]).default(""),
    /**
     * SHA-256 hex digests of the operator's tokens, for /drain, /check,
     * /stats and /links/rotate (also from the EDGE9P_OPERATOR_TOKENS
     * secret). With none, those routes are refused: a share's readers must
     * not be able to cut its sessions off.
     */
    operator_token_hashes: z.array(tokenHash).default([]),
    /**
     * What the share objects write to the log (wrangler tail, the console of
     * npm start): "info" also names sessions resumed, swept or closed for
     * not reading; "error" only what went wrong; "off" nothing.
     */
    log: z.enum(["info", "error", "off"]).default("info"),
  })
  .superRefine((c, ctx) => {
    if (c.inflight_bytes < c.msize_cap) {
      ctx.addIssue({
        code: "custom",
        path: ["inflight_bytes"],
        message: `must be at least msize_cap (${c.msize_cap}): one reply of msize must fit`,
      });
    }
    if (c.session_window_bytes > c.inflight_bytes) {
      ctx.addIssue({
        code: "custom",
        path: ["session_window_bytes"],
        message: `must be at most inflight_bytes (${c.inflight_bytes}): the share's budget holds every socket's unread replies`,
      });
    }
    if (c.multipart_threshold > c.inflight_bytes) {
      ctx.addIssue({
        code: "custom",
        path: ["multipart_threshold"],
        message: `must be at most inflight_bytes (${c.inflight_bytes}): a single PUT holds the whole file`,
      });
    }
    if (c.max_file_bytes > MAX_PARTS * c.inflight_bytes) {
      ctx.addIssue({
        code: "custom",
        path: ["max_file_bytes"],
        message: `must be at most ${MAX_PARTS} x inflight_bytes (${MAX_PARTS * c.inflight_bytes}): a file is published in at most ${MAX_PARTS} parts, each held in memory within inflight_bytes`,
      });
    }
    if (c.readahead_bytes !== undefined && c.readahead_bytes > c.inflight_bytes / 2) {
      ctx.addIssue({
        code: "custom",
        path: ["readahead_bytes"],
        message: `must be at most half of inflight_bytes (${c.inflight_bytes / 2}): readahead never takes the half replies keep`,
      });
    }
    if (c.content_cache_file_bytes !== undefined && c.content_cache_file_bytes > c.inflight_bytes / 2) {
      ctx.addIssue({
        code: "custom",
        path: ["content_cache_file_bytes"],
        message: `must be at most half of inflight_bytes (${c.inflight_bytes / 2}): a cached file is read whole into memory from that budget`,
      });
    }
    if (c.content_cache_bytes !== undefined && c.content_cache_bytes + c.journal_cap_bytes > STORAGE_FOR_CONTENT) {
      ctx.addIssue({
        code: "custom",
        path: ["content_cache_bytes"],
        message: `with journal_cap_bytes (${c.journal_cap_bytes}) must be at most ${STORAGE_FOR_CONTENT}: both live in the object's 10 GB of SQLite, with room left for the namespace`,
      });
    }
    const names = Object.keys(c.shares);
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const a = c.shares[names[i]!]!;
        const b = c.shares[names[j]!]!;
        if (a.bucket === b.bucket && prefixesOverlap(a.prefix, b.prefix)) {
          ctx.addIssue({
            code: "custom",
            path: ["shares", names[j]!, "prefix"],
            message: `overlaps share ${names[i]} in bucket ${a.bucket} ("${a.prefix}" and "${b.prefix}"): two shares would own the same keys`,
          });
        }
      }
    }
  })
  // Defaults that depend on other fields.
  .transform((c) => ({
    ...c,
    readahead_bytes: c.readahead_bytes ?? Math.min(16 * MiB, Math.floor(c.inflight_bytes / 2)),
    content_cache_bytes: c.content_cache_bytes ?? Math.max(0, Math.min(DEFAULT_CACHE_BYTES, STORAGE_FOR_CONTENT - c.journal_cap_bytes)),
    content_cache_file_bytes: c.content_cache_file_bytes ?? Math.min(MiB, Math.floor(c.inflight_bytes / 2)),
  }));

export type Config = z.output<typeof ConfigSchema>;
export type ShareConfig = z.output<typeof ShareSchema>;

/** Whether two key prefixes (no trailing slash, "" = all) can hold the same key. */
export function prefixesOverlap(a: string, b: string): boolean {
  if (a === "" || b === "" || a === b) return true;
  return a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** The name of a share's Durable Object: one object per bucket + prefix. */
export function objectName(share: ShareConfig): string {
  return `${share.bucket}/${share.prefix}`;
}

/** The variable of wrangler.toml ([vars.EDGE9P]) that holds the configuration. */
export const CONFIG_VAR = "EDGE9P";

export type ConfigResult = { ok: true; config: Config; notes?: string[] } | { ok: false; error: string };

/** Formats zod issues as `EDGE9P.shares.dev.prefix: message` lines. */
function describe(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = [CONFIG_VAR, ...i.path.map(String)].join(".");
      // A bad record key (a share name) carries the reason in its own issues.
      const inner = i.code === "invalid_key" ? i.issues[0]?.message : undefined;
      return `${path}: ${inner ?? i.message}`;
    })
    .join("; ");
}

/**
 * Parses the configuration from the worker's environment. `bindings` are the
 * names of the R2 bindings that exist (the worker passes its env's keys, the
 * check command those of wrangler.toml), so a share naming a missing binding
 * is an error too.
 */
export function parseConfig(
  raw: unknown,
  hasBinding: (name: string) => boolean,
  /** The EDGE9P_TOKENS secret's value; "not visible" where secrets cannot be read (npm run check). */
  tokens?: unknown,
  /** The EDGE9P_OPERATOR_TOKENS secret's value, or "not visible". */
  operatorTokens?: unknown,
): ConfigResult {
  if (raw === undefined) return { ok: false, error: `${CONFIG_VAR} is not set: add [vars.${CONFIG_VAR}] to wrangler.toml` };
  let value: unknown = raw;
  if (typeof raw === "string") {
    // Not JSON.parse's message: it quotes a piece of the text it failed on.
    const v = parseJson(raw);
    if (v === NOT_JSON) return { ok: false, error: `${CONFIG_VAR}: not valid JSON` };
    value = v;
  }
  const parsed = ConfigSchema.safeParse(value);
  if (!parsed.success) return { ok: false, error: `configuration error: ${describe(parsed.error)}` };
  const config = parsed.data;
  for (const [name, share] of Object.entries(config.shares)) {
    if (!hasBinding(share.binding)) {
      return {
        ok: false,
        error: `configuration error: ${CONFIG_VAR}.shares.${name}.binding: no R2 binding named ${share.binding}`,
      };
    }
  }
  if (tokens !== undefined && tokens !== "not visible") {
    const why = mergeShareTokens(config, tokens);
    if (why) return { ok: false, error: `configuration error: ${why}` };
  }
  if (operatorTokens !== undefined && operatorTokens !== "not visible") {
    const why = mergeOperatorTokens(config, operatorTokens);
    if (why) return { ok: false, error: `configuration error: ${why}` };
  }
  if (config.deployed && (config.r2_latency_ms > 0 || config.r2_bandwidth_bytes > 0)) {
    const field = config.r2_latency_ms > 0 ? "r2_latency_ms" : "r2_bandwidth_bytes";
    return {
      ok: false,
      error: `configuration error: ${CONFIG_VAR}.${field}: a development setting (it slows every R2 call to model R2 at a distance on a local gateway); a deployed gateway refuses it`,
    };
  }
  for (const share of Object.values(config.shares)) {
    share.plain_9p ??= !config.deployed;
    share.device_nodes ??= !config.deployed;
  }
  const notes: string[] = [];
  if (config.session_window_bytes < 2 * config.msize_cap) {
    notes.push(
      `session_window_bytes (${config.session_window_bytes}) is under twice msize_cap (${config.msize_cap}): a client reading at full msize gets one read at a time on each socket`,
    );
  }
  if (config.deployed) {
    for (const [name, share] of Object.entries(config.shares)) {
      if (share.token_hashes.length > 0 || share.public) continue;
      if (tokens === "not visible") {
        notes.push(`share ${name}: no token_hashes here: the deployed worker refuses it unless the ${TOKENS_SECRET} secret gives it some (wrangler secret list)`);
        continue;
      }
      return {
        ok: false,
        error: `configuration error: ${CONFIG_VAR}.shares.${name}.token_hashes: a deployed gateway refuses a share without tokens: add token hashes (npx edge9p token) to token_hashes or the ${TOKENS_SECRET} secret, or set public = true`,
      };
    }
  }
  if (config.operator_token_hashes.length === 0 && operatorTokens === "not visible") {
    notes.push(
      `operator routes (drain, check, stats, links/rotate): no operator_token_hashes here: the worker refuses them unless the ${OPERATOR_TOKENS_SECRET} secret gives some (npm start makes one per run)`,
    );
  }
  return { ok: true, config, notes };
}

const NOT_JSON = Symbol("not JSON");

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return NOT_JSON;
  }
}

/*
 * The secrets' errors say where, never what: a secret's text may be a token
 * pasted in the wrong place, so neither a value nor a key that is not a
 * configured share's name is repeated in a message (which every request
 * answers with).
 */

/** Adds the EDGE9P_TOKENS secret's hashes to the shares; the error, if any. */
function mergeShareTokens(config: Config, secret: unknown): string | null {
  const form = `(it is JSON {"SHARE": ["sha256 hex", ...]})`;
  const value = typeof secret === "string" ? parseJson(secret) : secret;
  if (value === NOT_JSON) return `${TOKENS_SECRET}: not valid JSON ${form}`;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const stranger = keys.findIndex((k) => !Object.hasOwn(config.shares, k));
    if (stranger >= 0) return `${TOKENS_SECRET}: key ${stranger + 1} is not a share of ${CONFIG_VAR}.shares ${form}`;
  }
  const parsed = TokensSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    // Keys are configured share names by now; indexes are numbers.
    return `${[TOKENS_SECRET, ...i.path.map(String)].join(".")}: ${i.message} ${form}`;
  }
  for (const [name, hashes] of Object.entries(parsed.data)) {
    const share = config.shares[name]!;
    share.token_hashes = [...share.token_hashes, ...hashes];
  }
  return null;
}

/** Adds the EDGE9P_OPERATOR_TOKENS secret's hashes to operator_token_hashes; the error, if any. */
function mergeOperatorTokens(config: Config, secret: unknown): string | null {
  const form = `(it is JSON ["sha256 hex", ...])`;
  const value = typeof secret === "string" ? parseJson(secret) : secret;
  if (value === NOT_JSON) return `${OPERATOR_TOKENS_SECRET}: not valid JSON ${form}`;
  const parsed = OperatorTokensSchema.safeParse(value);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    return `${[OPERATOR_TOKENS_SECRET, ...i.path.map(String)].join(".")}: ${i.message} ${form}`;
  }
  config.operator_token_hashes = [...config.operator_token_hashes, ...parsed.data];
  return null;
}
