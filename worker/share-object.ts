// The share's Durable Object: one per bucket + prefix. It terminates the 9P
// sessions (one per WebSocket, accepted with the hibernation API) and owns
// the share's namespace in its SQLite.

import type { CheckReport } from "../storage/fsck.ts";
import { DurableObject } from "cloudflare:workers";
import {
  ACK_SUBPROTOCOL,
  PLATFORM_MSIZE_CEILING_SOURCE,
  RESUME_HEADER,
  nameOfId,
  RESUME_WINDOW_HEADER,
  SECRET_HEADER,
  SESSION_HEADER,
  SUBPROTOCOL,
} from "../protocol/index.ts";
import { randomHex, sameText, sha256Hex } from "./auth.ts";
import { type CacheStats, noCache } from "../storage/content-cache.ts";
import type { PublishStats } from "../storage/publisher.ts";
import { type R2Calls, noCalls } from "../storage/r2-calls.ts";
import { type ReadaheadStats, noReadahead } from "../storage/readahead.ts";
import { ShareFs } from "../storage/share-fs.ts";
import { ByteBudget } from "./budget.ts";
import { serveFile } from "./files.ts";
import { type Access, check9pLink, linkKeyOf, linkKeysOf, refusedLink, rotateLinkKey, sign9pUrl, signLink } from "./links.ts";
import { CLOSE } from "./close-codes.ts";
import { type Config, type ShareConfig, objectName } from "./config.ts";
import { bucketOf, configOf, fsidOf } from "./env.ts";
import { type Log, logAt } from "./log.ts";
import { HANDLERS } from "./handlers/index.ts";
import { Outbox } from "./outbox.ts";
import { SessionStore } from "./session-store.ts";
import { FLUSH_MS, type SessionHost, Session } from "./session.ts";
import { SqlMeter, type WriteTally } from "./sql-meter.ts";

/** Header the worker sets when it hands a request to the object. */
export const SHARE_HEADER = "X-Edge9p-Share";
/** Header the worker sets for GET .../files/<path>: the path, still percent-encoded. */
export const FILE_HEADER = "X-Edge9p-File";
/** Header the worker sets for a signed link instead of a token: "EXPIRES SIGNATURE", checked here. */
export const LINK_HEADER = "X-Edge9p-Link";
/** Header the worker sets for a signed 9P URL instead of a token: "EXPIRES ACCESS SIGNATURE", checked here. */
export const NINEP_LINK_HEADER = "X-Edge9p-9p-Link";
export { SUBPROTOCOL };

export interface ShareStats {
  share: string | null;
  /** Constructions of this object: each wake-up from hibernation adds one. */
  boots: number;
  sessions: number;
  sockets: number;
  /** R2 list calls since the object was constructed. */
  listCalls: number;
  /** Bytes written and not yet published. */
  journalBytes: number;
  publish: PublishStats | null;
  inflightBytes: number;
  /** Most reply bytes held at once since the object was constructed. */
  inflightHighWater: number;
  /** Reply bytes sent on the share's sockets and not yet read by their clients. */
  unreadBytes: number;
  /** Sockets closed because their clients left replies unread (4006). */
  notReading: number;
  /** Unread bytes on sockets the gateway closed whose peers have not gone yet. */
  strandedBytes: number;
  /** The content cache: hits, misses, fills, evictions, bytes and entries held, its bounds. */
  cache: CacheStats;
  /** Readahead: reads served from it, misses, fetches, the windows. */
  readahead: ReadaheadStats;
  /** R2 calls since the object was constructed, by method. */
  r2Calls: R2Calls;
  /**
   * SQLite rows written since the object was constructed, by what wrote
   * them: each 9P request type (by the type byte of the messages
   * received), "fid flush" (the batch of worker/session.ts), "cache fill"
   * (the content cache's rows, after the replies: storage/share-fs.ts), "alarm",
   * "fetch" (a socket's opening, the files route), "close", "start" (the
   * constructor), "text" (acks, a resume's hello), "other".
   */
  writes: Record<string, WriteTally>;
}

interface Attachment {
  sid: string;
  /** Which of a resumable session's sockets this is: only the latest counts. */
  gen?: number;
  /** The client acknowledges marks ("9p.ack"). */
  acks?: boolean;
  /** A socket replaced by a resume: its late messages must not reach the session. */
  stale?: boolean;
  /** Opened through a read-only signed 9P URL: every change answers EROFS. */
  readOnly?: boolean;
  /** Opened through a signed 9P URL: rotating the share's links ends it. */
  signed?: boolean;
}

interface Ready {
  name: string;
  share: ShareConfig;
  config: Config;
  fs: ShareFs;
}

export class ShareObject extends DurableObject<Env> {
  private readonly meter: SqlMeter;
  private readonly sql: SqlStorage;
  private readonly store: SessionStore;
  /**
   * Sessions by id. Keyed by the attachment's session id, not by the
   * WebSocket object: the object handed to webSocketMessage need not be the
   * one accepted, and two Session objects for one socket would each see
   * only part of its requests in flight.
   */
  private readonly sessions = new Map<string, Session>();
  private ready: Ready | null = null;
  private budget: ByteBudget | null = null;
  /**
   * Each socket's sending side (worker/outbox.ts), by session id and socket
   * generation. It lives until the socket is really gone (webSocketClose or
   * webSocketError), not when the session ends: bytes queued on a socket
   * the gateway closed stay in workerd until the peer's connection goes.
   */
  private readonly outboxes = new Map<string, Outbox>();
  private notReading = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.meter = new SqlMeter(ctx.storage.sql);
    this.sql = this.meter.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)`);
    this.store = new SessionStore(this.sql);
    this.meter.run("start", () => {
      // Counts constructions: each wake-up from hibernation is one.
      this.sql.exec(`INSERT INTO meta (k, v) VALUES ('boots', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1`);
      const rows = this.sql.exec(`SELECT v FROM meta WHERE k = 'share'`).toArray();
      if (rows.length) this.init(rows[0]!.v as string);
      this.sweep();
    });
  }

  /**
   * Log lines at EDGE9P.log's level (errors only if the configuration does
   * not parse). Read per line: configOf parses once per isolate, and logAt
   * hands out one Log per level.
   */
  private get log(): Log {
    const c = configOf(this.env);
    return logAt(c.ok ? c.config.log : "error");
  }

  /** The pending batch write of the sessions' state (worker/session.ts), if any. */
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  /**
   * Writes the sessions' batched state within FLUSH_MS. The timer also
   * keeps the object from hibernating before it has run (an object with a
   * pending timer is not idle: docs/platform.md).
   */
  private deferFlush(): void {
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.meter.run("fid flush", () => this.flushSessions());
    }, FLUSH_MS);
  }

  private flushSessions(): void {
    try {
      for (const s of this.sessions.values()) s.writeBatch();
    } catch (e) {
      // The object is going away (a restart): what was not written goes with its sockets.
      this.log.error(`ShareObject.flushSessions: ${(e as Error).message}`);
    }
  }

  /**
   * Ends the sessions whose socket is gone: a restart or deploy closes
   * sockets without webSocketClose ever running (platform facts). Their
   * fids are released (open files closed, so unlinked ones go and written
   * ones get published) and their locks dropped.
   */
  private sweep(): void {
    const live = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const sid = sidOf(ws);
      if (sid) live.add(sid);
    }
    const fs = this.ready?.fs;
    const swept = this.store.sweep(live, (f) => {
      if (f.open && f.kind === "node") fs?.closed(f.ino);
    });
    for (const sid of swept) fs?.locks.dropSession(sid);
    // Fids of those sessions that had no row yet were lost with them.
    if (swept.length) fs?.settleLostFids();
    if (swept.length) this.log.info(`swept ${swept.length} sessions whose sockets are gone`);
    this.evictDetached();
    // Resumable sessions left waiting for their clients end by the alarm.
    if (swept.length || this.store.oldestDetached() !== null) this.ctx.waitUntil(this.scheduleAlarm());
  }

  /** Builds the share's filesystem; null (and a log line) if the configuration is bad. */
  private init(name: string): Ready | null {
    if (this.ready?.name === name) return this.ready;
    const c = configOf(this.env);
    if (!c.ok) {
      this.log.error(c.error);
      return null;
    }
    const share = c.config.shares[name];
    if (!share) {
      this.log.error(`share ${name} is no longer configured`);
      return null;
    }
    const oname = objectName(share);
    const fs = new ShareFs(
      this.sql,
      bucketOf(this.env, share, c.config),
      {
        prefix: share.prefix,
        uid: share.uid,
        gid: share.gid,
        fileMode: share.file_mode,
        dirMode: share.dir_mode,
        revalidateMs: c.config.dir_revalidate_ms,
        quotaBytes: c.config.quota_bytes,
        fsid: fsidOf(oname),
        journalCap: c.config.journal_cap_bytes,
        maxFileBytes: c.config.max_file_bytes,
        // Parts are read into buffers taken from the budget below.
        partMaxBytes: c.config.inflight_bytes,
        publishDelayMs: c.config.publish_delay_ms,
        multipartThreshold: c.config.multipart_threshold,
        maxDepth: c.config.max_depth,
        maxLocksPerSession: c.config.max_locks_per_session,
        maxLocksPerInode: c.config.max_locks_per_inode,
        maxLocks: c.config.max_locks,
        // parseConfig settles it; refused if it somehow did not.
        deviceNodes: share.device_nodes === true,
        readaheadBytes: c.config.readahead_bytes,
        cacheBytes: c.config.content_cache_bytes,
        cacheFileBytes: c.config.content_cache_file_bytes,
      },
      (msg) => this.log.info(`[${name}] ${msg}`),
      (n) => this.budget!.acquire(n),
      // Readahead and cache fills hold bytes for a while: never the budget's last half, which replies keep.
      (n) => this.budget!.tryAcquire(n, this.budget!.limit / 2),
      // The content cache's writes, after the reply: a 9P reply is sent in the
      // same run of microtasks as its read ends (Session.run: handler, reply,
      // outbox.send, no await between), so a timer runs after it; and its
      // rows are counted as their own kind, not as the request's (a timer
      // keeps the async context it was set in).
      (what, f) => void setTimeout(() => this.meter.run(what, f), 0),
    );
    // Open counts live in memory (storage/namespace.ts): counted again from the fids that have rows.
    fs.countOpens(this.store.openNodes());
    this.sql.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES ('share', ?)`, name);
    this.budget ??= new ByteBudget(c.config.inflight_bytes);
    this.ready = { name, share, config: c.config, fs };
    return this.ready;
  }

  private host(ws: WebSocket, r: Ready): SessionHost {
    // The socket's own scope (a read-only 9P URL) narrows the share's.
    const scopedReadOnly = (ws.deserializeAttachment() as Attachment | null)?.readOnly === true;
    return {
      fs: r.fs,
      store: this.store,
      budget: this.budget!,
      handlers: HANDLERS,
      limits: {
        msizeCap: r.config.msize_cap,
        capSource: "EDGE9P.msize_cap",
        iounit: r.config.iounit,
        readOnly: r.share.read_only || scopedReadOnly,
        maxFids: r.config.max_fids,
        maxInflight: r.config.max_inflight,
        maxShareFids: r.config.max_share_fids,
        maxXattrBytes: r.config.max_xattr_bytes,
        idleTimeoutMs: r.config.idle_timeout_ms,
      },
      outbox: this.outboxOf(ws, r),
      // The session ends (a protocol error, an idle timeout): not a detach.
      close: (code, reason) => {
        const sid = sidOf(ws);
        if (sid !== null) this.endSession(sid, ws);
        this.closeSocket(ws, code, reason);
      },
      log: (msg) => this.log.info(`[${r.name}] ${msg}`),
      // Most requests schedule nothing: skip the async work unless the publisher's epoch moved.
      changed: () => {
        if ((this.ready?.fs.publisher.epoch ?? 0) !== this.alarmEpoch) this.ctx.waitUntil(this.scheduleAlarm());
      },
      deferFlush: () => this.deferFlush(),
    };
  }

  /** The sending side of a socket, made on first use. */
  private outboxOf(ws: WebSocket, r: Ready): Outbox {
    const a = ws.deserializeAttachment() as Attachment | null;
    const key = outboxKey(a);
    let o = this.outboxes.get(key);
    if (o) return o;
    o = new Outbox(
      {
        send: (m) => ws.send(m),
        // The socket goes; a resumable session waits for its client as after
        // any drop (a paused VM behind the bridge reads again later), any
        // other ends.
        cut: (reason) => {
          this.notReading++;
          this.log.info(`[${r.name}] session ${a?.sid}: ${reason}; closing (${CLOSE.NOT_READING})`);
          const s = a ? this.sessions.get(a.sid) : undefined;
          if (s && !s.resumable) return s.end(CLOSE.NOT_READING, reason);
          this.closeSocket(ws, CLOSE.NOT_READING, reason);
          this.forget(ws);
        },
      },
      this.budget!,
      { window: r.config.session_window_bytes, stallMs: r.config.session_stall_ms, acks: a?.acks === true },
    );
    this.outboxes.set(key, o);
    return o;
  }

  /** The socket is gone for good: what its outbox held is free. */
  private socketGone(ws: WebSocket): void {
    const key = outboxKey(ws.deserializeAttachment() as Attachment | null);
    const o = this.outboxes.get(key);
    if (!o) return;
    o.closed();
    this.stranded -= o.stranded;
    this.outboxes.delete(key);
  }

  /**
   * Closes a socket from the gateway's side. Its outbox gives its budget
   * back at once; what it left unread stays counted as stranded until the
   * socket is really gone (a peer that never reads keeps it in workerd).
   */
  private closeSocket(ws: WebSocket, code: number, reason: string): void {
    const o = this.outboxes.get(outboxKey(ws.deserializeAttachment() as Attachment | null));
    if (o && o.stranded === 0) {
      o.strand();
      this.stranded += o.stranded;
    }
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // already closing
    }
  }

  /** Unread bytes on sockets the gateway closed whose peers have not gone yet. */
  private stranded = 0;

  /** When the one alarm is set for (ms), as far as this instance knows. */
  private alarmAt: number | null = null;
  /** The publisher's epoch when the alarm was last considered. */
  private alarmEpoch = -1;

  /**
   * The object has one alarm; every timer (publisher, job retries) is
   * multiplexed onto it: it is set for the earliest thing due.
   */
  private async scheduleAlarm(): Promise<void> {
    try {
      await this.armAlarm();
    } catch (e) {
      // The object is going away (a restart): the next start re-arms it.
      this.log.error(`ShareObject.scheduleAlarm: ${(e as Error).message}`);
    }
  }

  private async armAlarm(): Promise<void> {
    const epoch = this.ready?.fs.publisher.epoch ?? 0;
    if (epoch === this.alarmEpoch) return; // nothing was scheduled since the last look
    this.alarmEpoch = epoch;
    let next = this.ready?.fs.nextWakeup() ?? null;
    const idle = this.ready?.config.idle_timeout_ms ?? 0;
    if (idle > 0) {
      const oldest = this.store.oldestActive();
      if (oldest !== null) next = Math.min(next ?? Infinity, oldest + idle + 1000);
    }
    const detached = this.store.oldestDetached();
    if (detached !== null) next = Math.min(next ?? Infinity, detached + this.resumeWindow() + 1);
    if (next === null) return;
    if (this.alarmAt === null) this.alarmAt = await this.ctx.storage.getAlarm();
    const at = Math.max(next, Date.now() + 1);
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Runs what is due; may run more than once for one time (handlers are idempotent). */
  override async alarm(): Promise<void> {
    return this.meter.run("alarm", () => this.runAlarm());
  }

  private async runAlarm(): Promise<void> {
    this.alarmAt = null;
    this.alarmEpoch = -1;
    try {
      this.closeIdle();
      this.endUnresumed();
      await this.ready?.fs.runDue();
    } catch (e) {
      this.log.error(`ShareObject.alarm: ${(e as Error).stack ?? e}`);
    }
    this.alarmAt = null;
    this.alarmEpoch = -1;
    await this.scheduleAlarm();
  }

  private resumeWindow(): number {
    return this.ready?.config.resume_window_ms ?? 300_000;
  }

  /** Ends the sessions that have waited longest while more than max_detached_sessions wait. */
  private evictDetached(): void {
    const max = this.ready?.config.max_detached_sessions;
    if (max === undefined) return;
    const over = this.store.countDetached() - max;
    if (over <= 0) return;
    for (const sid of this.store.longestDetached(over)) {
      this.log.info(`session ${sid}: ended while waiting for its client: more than ${max} sessions wait (EDGE9P.max_detached_sessions)`);
      this.endSession(sid, null);
    }
  }

  /** Ends the resumable sessions whose clients did not come back within the window. */
  private endUnresumed(): void {
    for (const sid of this.store.detachedBefore(Date.now() - this.resumeWindow())) {
      this.log.info(`session ${sid}: not resumed within ${this.resumeWindow()} ms; ended`);
      this.endSession(sid, null);
    }
  }

  /** Closes the sessions idle past EDGE9P.idle_timeout_ms. */
  private closeIdle(): void {
    const idle = this.ready?.config.idle_timeout_ms ?? 0;
    if (idle <= 0) return;
    const stale = new Set(this.store.idleSince(Date.now() - idle));
    if (stale.size === 0) return;
    for (const ws of this.ctx.getWebSockets()) {
      const sid = sidOf(ws);
      if (sid === null || !stale.has(sid)) continue;
      // Ended, not detached: a resumable client must not come back to it.
      this.endSession(sid, ws);
      this.closeSocket(ws, CLOSE.IDLE, `no request for ${Math.round(idle / 1000)} s`);
    }
  }

  /** The share's consistency check (storage/fsck.ts), for GET /v1/shares/NAME/check. */
  async check(name: string): Promise<CheckReport | null> {
    return this.init(name)?.fs.check() ?? null;
  }

  /**
   * Closes every socket of the share (POST /v1/shares/NAME/drain): sessions
   * that can resume (through `edge9p bridge`) carry on on a new socket, the
   * others end. Returns the number of sockets closed.
   */
  async drainShare(name: string): Promise<number | null> {
    if (!this.init(name)) return null;
    const all = this.ctx.getWebSockets();
    for (const ws of all) {
      this.closeSocket(ws, CLOSE.DRAIN, "the gateway closed this connection: resume or reconnect");
      this.forget(ws);
    }
    return all.length;
  }

  /** The signature of a link to a file of the share (the path percent-encoded, as in the URL). */
  async signFileLink(name: string, encodedPath: string, expires: number): Promise<string> {
    return signLink(linkKeyOf(this.sql), name, encodedPath, expires);
  }

  /** The signature of a 9P URL of the share. */
  async sign9pUrl(name: string, access: Access, expires: number): Promise<string> {
    return sign9pUrl(linkKeyOf(this.sql), name, access, expires);
  }

  /**
   * Revokes every signed link of the share (POST /v1/shares/NAME/links/rotate);
   * when, in seconds. Sessions opened through a 9P URL end too (4007): a
   * leaked URL is revoked for whoever is already connected with it, not only
   * for whoever comes next.
   */
  async rotateLinks(name: string): Promise<number | null> {
    if (!this.init(name)) return null;
    const now = Math.floor(Date.now() / 1000);
    rotateLinkKey(this.sql, now);
    for (const ws of this.ctx.getWebSockets()) {
      const a = ws.deserializeAttachment() as Attachment | null;
      if (!a?.signed || a.stale) continue;
      this.endSession(a.sid, ws);
      this.closeSocket(ws, CLOSE.REVOKED, "the share's signed URLs were revoked (links rotated): ask for a new one");
    }
    return now;
  }

  /** Publishes every unpublished change now (tests, benchmarks, an operator's sync). */
  async publishAll(): Promise<void> {
    await this.ready?.fs.publishAll();
    this.alarmEpoch = -1;
    await this.scheduleAlarm();
  }

  override async fetch(request: Request): Promise<Response> {
    return this.meter.run("fetch", () => this.serve(request));
  }

  private async serve(request: Request): Promise<Response> {
    const name = request.headers.get(SHARE_HEADER);
    const r = name ? this.init(name) : null;
    if (!r) return new Response("share not configured\n", { status: 500 });
    const file = request.headers.get(FILE_HEADER);
    if (file !== null) {
      const refused = await refusedLink(request.headers.get(LINK_HEADER), (now) => linkKeysOf(this.sql, now), name!, file);
      return refused ?? serveFile(r.fs, file, request);
    }
    // A signed 9P URL instead of a token: refused (403, why) before anything
    // else, and its access kept with the socket.
    const link = request.headers.get(NINEP_LINK_HEADER);
    let access: Access | null = null;
    if (link !== null) {
      const v = await check9pLink(link, (now) => linkKeysOf(this.sql, now), name!);
      if ("refused" in v) return v.refused;
      access = v.access;
    }
    // Sockets still open or closing (a closed socket's unread replies stay
    // in workerd until its peer goes) and resumable sessions waiting for
    // their clients all count.
    const resume = request.headers.get(RESUME_HEADER);
    const all = this.ctx.getWebSockets();
    const sockets = all.length;
    const live = new Set(all.map(sidOf));
    const waiting = this.store.detachedSids().filter((sid) => !live.has(sid));
    // A resume takes the place its session held while it waited.
    const resuming = resume && resume !== "new" ? resume.split(".")[0]! : null;
    const held = sockets + waiting.length - (resuming !== null && waiting.includes(resuming) ? 1 : 0);
    if (this.stranded >= r.config.inflight_bytes) {
      return Response.json(
        {
          error: `share ${name}: ${this.stranded} bytes of replies wait on sockets closed for not reading, whose clients keep them open (EDGE9P.inflight_bytes); try again later`,
        },
        { status: 503, headers: { "Retry-After": "30" } },
      );
    }
    if (held >= r.config.max_sessions) {
      return Response.json(
        {
          error: `share ${name} holds ${held} sessions (${sockets} sockets, ${waiting.length} waiting to be resumed), its limit (EDGE9P.max_sessions); try again later`,
        },
        { status: 503, headers: { "Retry-After": "5" } },
      );
    }
    const offered = (request.headers.get("Sec-WebSocket-Protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
    const acks = offered.includes(ACK_SUBPROTOCOL);
    const plain = r.share.plain_9p;
    if (!acks && plain !== true && !(plain === "signed" && access !== null)) {
      const error =
        plain === "signed"
          ? `share ${name} takes plain 9P clients only through a signed 9P URL (POST /v1/shares/${name}/links {"kind": "9p"}); others must offer WebSocket subprotocol "${ACK_SUBPROTOCOL}"`
          : `share ${name} takes only clients that acknowledge what they read (WebSocket subprotocol "${ACK_SUBPROTOCOL}", as edge9p bridge, the CLI and the share browser offer); plain 9P clients need EDGE9P.shares.${name}.plain_9p = true or "signed"`;
      return Response.json({ error }, { status: 400 });
    }
    const scope: Pick<Attachment, "readOnly" | "signed"> = access === null ? {} : { signed: true, ...(access === "ro" ? { readOnly: true } : {}) };
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const headers: Record<string, string> = {
      "X-Edge9p-Msize-Max": String(r.config.msize_cap),
      "X-Edge9p-Msize-Reason": r.config.msize_cap < 33_554_432 ? "operator cap EDGE9P.msize_cap" : PLATFORM_MSIZE_CEILING_SOURCE,
    };
    // Only a protocol the client offered (RFC 6455 section 4.1: it fails
    // the connection otherwise, and Chromium does): none for none.
    if (offered.length > 0) headers["Sec-WebSocket-Protocol"] = acks ? ACK_SUBPROTOCOL : SUBPROTOCOL;
    if (resume && resume !== "new") {
      const refused = await this.resume(server, r, resume, acks, scope);
      if (refused) {
        // Accepted to say why with a close code (an HTTP error reaches no WebSocket client's code).
        this.log.info(`refused a resume: ${refused}`);
        server.close(CLOSE.RESUME_REFUSED, refused.slice(0, 120));
      } else {
        headers[SESSION_HEADER] = resume.split(".")[0]!;
        headers[RESUME_WINDOW_HEADER] = String(r.config.resume_window_ms);
      }
      return new Response(null, { status: 101, webSocket: client, headers });
    }
    const sid = crypto.randomUUID();
    let secretHash: string | null = null;
    if (resume === "new") {
      const secret = randomHex(24);
      secretHash = await sha256Hex(secret);
      headers[SECRET_HEADER] = secret;
      headers[RESUME_WINDOW_HEADER] = String(r.config.resume_window_ms);
    }
    server.serializeAttachment({ sid, gen: 0, acks, ...scope } satisfies Attachment);
    this.sessions.set(sid, Session.start(sid, this.host(server, r), secretHash));
    headers[SESSION_HEADER] = sid;
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /**
   * Moves a resumable session onto a new socket; returns why not, if not.
   * The old socket, if the object still holds it, is closed as stale.
   */
  private async resume(ws: WebSocket, r: Ready, token: string, acks: boolean, scope: Pick<Attachment, "readOnly" | "signed">): Promise<string | null> {
    const [sid, secret] = token.split(".");
    if (!sid || !secret) return `${RESUME_HEADER} must be "new" or "<session>.<secret>"`;
    const rec = this.store.resumeOf(sid);
    if (!rec) return `session ${sid} cannot be resumed: it ended (or never existed)`;
    if (!sameText(await sha256Hex(secret), rec.secretHash)) return `session ${sid}: wrong resume secret`;
    // Re-read after the await: another resume may have won meanwhile.
    const now = this.store.resumeOf(sid);
    if (!now || now.gen !== rec.gen) return `session ${sid} was resumed on another connection meanwhile`;
    const gen = this.store.reattach(sid);
    for (const old of this.ctx.getWebSockets()) {
      const a = old.deserializeAttachment() as Attachment | null;
      if (old === ws || a?.sid !== sid) continue;
      old.serializeAttachment({ ...a, stale: true } satisfies Attachment);
      this.bySocket.delete(old);
      this.closeSocket(old, CLOSE.REPLACED, "the session was resumed on another connection");
    }
    // The new socket's own credential decides its scope, whatever the old one's was.
    ws.serializeAttachment({ sid, gen, acks, ...scope } satisfies Attachment);
    const s = this.sessions.get(sid) ?? Session.restore(sid, this.host(ws, r));
    if (!s) return `session ${sid} cannot be resumed: its state is gone`;
    s.resume(this.host(ws, r));
    this.sessions.set(sid, s);
    this.bySocket.set(ws, s);
    this.log.info(`[${r.name}] session ${sid} resumed`);
    return null;
  }

  /** stats() of a share's object, started for it if it was not (GET /v1/shares/NAME/stats). */
  async statsOf(name: string): Promise<ShareStats | null> {
    return this.init(name) ? this.stats() : null;
  }

  /** Figures about this object, for tests, benchmarks and operators. */
  stats(): ShareStats {
    const boots = this.sql.exec(`SELECT v FROM meta WHERE k = 'boots'`).one().v as number;
    return {
      share: this.ready?.name ?? null,
      boots,
      sessions: this.store.count(),
      sockets: this.ctx.getWebSockets().length,
      listCalls: this.ready?.fs.listCalls ?? 0,
      journalBytes: this.ready?.fs.journal.bytes ?? 0,
      publish: this.ready ? { ...this.ready.fs.publisher.stats } : null,
      inflightBytes: this.budget?.inUse ?? 0,
      inflightHighWater: this.budget?.highWater ?? 0,
      unreadBytes: [...this.outboxes.values()].reduce((n, o) => n + o.unread, 0),
      notReading: this.notReading,
      strandedBytes: this.stranded,
      cache: this.ready?.fs.cache.stats() ?? noCache(),
      readahead: this.ready?.fs.readahead.stats() ?? noReadahead(),
      r2Calls: { ...(this.ready?.fs.r2Calls ?? noCalls()) },
      writes: this.meter.snapshot(),
    };
  }

  /** The session of a socket, restored from SQLite after a hibernation. */
  private sessionOf(ws: WebSocket): Session | null {
    const cached = this.bySocket.get(ws);
    if (cached) return cached;
    const a = ws.deserializeAttachment() as Attachment | null;
    if (!a || a.stale) return null;
    const sid = a.sid;
    let s = this.sessions.get(sid);
    if (s) {
      this.bySocket.set(ws, s);
      return s;
    }
    if (!this.ready) return null;
    s = Session.restore(sid, this.host(ws, this.ready)) ?? undefined;
    if (s) {
      this.sessions.set(sid, s);
      this.bySocket.set(ws, s);
    }
    return s ?? null;
  }

  /** Sessions by socket object, sparing a deserializeAttachment per message. */
  private readonly bySocket = new WeakMap<WebSocket, Session>();

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    try {
      const s = this.sessionOf(ws);
      if (!s) {
        ws.close(CLOSE.SESSION_LOST, "session state is gone: reconnect");
        return;
      }
      if (typeof message === "string") return this.meter.run("text", () => s.text(message));
      // Not awaited: workerd delivers a socket's next message only once this
      // handler returns, and requests must run concurrently (many tags in
      // flight, replies in any order). waitUntil keeps the object alive for it.
      const bytes = new Uint8Array(message);
      const kind = bytes.byteLength > 4 ? nameOfId(bytes[4]!) : "short message";
      this.ctx.waitUntil(this.meter.run(kind, () => s.receive(bytes)).catch((e) => this.failed(ws, e)));
    } catch (e) {
      this.failed(ws, e);
    }
  }

  /** A request failed outside every handler: log it and end that session only. */
  private failed(ws: WebSocket, e: unknown): void {
    this.log.error(`ShareObject.webSocketMessage: ${(e as Error).stack ?? e}`);
    try {
      this.forget(ws);
      ws.close(CLOSE.INTERNAL, "internal error");
    } catch {
      // The object or the socket is already gone (a restart).
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.meter.run("close", () => this.closed(ws, code, reason));
  }

  private closed(ws: WebSocket, code: number, reason: string): void {
    try {
      // A client that closes normally is done with its session; any other
      // end may be a drop that a resumable client comes back from.
      this.forget(ws, code === CLOSE.NORMAL);
      this.socketGone(ws);
      // The object must answer the close itself (platform facts); 1005, 1006
      // and 1015 are reserved and cannot be sent.
      ws.close(code === 1005 || code === 1006 || code === 1015 ? CLOSE.NORMAL : code, reason);
    } catch (e) {
      this.log.error(`ShareObject.webSocketClose: ${(e as Error).message}`);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.log.error(`ShareObject.webSocketError: ${error instanceof Error ? error.message : String(error)}`);
    this.meter.run("close", () => {
      this.forget(ws);
      this.socketGone(ws);
    });
  }

  /**
   * The socket is gone. A resumable session waits for its client (for the
   * resume window) unless `ended`; any other ends. A stale socket of a
   * resumed session changes nothing.
   */
  private forget(ws: WebSocket, ended = false): void {
    const a = ws.deserializeAttachment() as Attachment | null;
    if (!a) return;
    this.bySocket.delete(ws);
    const resumable = this.store.resumeOf(a.sid);
    if (resumable && a.gen !== resumable.gen) return;
    if (resumable && !ended) {
      this.store.setDetached(a.sid, Date.now());
      const s = this.sessionFor(a.sid, ws);
      s?.detach();
      if (s) this.sessions.set(a.sid, s);
      this.evictDetached();
      this.alarmEpoch = -1;
      this.ctx.waitUntil(this.scheduleAlarm());
      return;
    }
    this.endSession(a.sid, ws);
  }

  /** The session in memory, or restored from SQLite onto `ws`. */
  private sessionFor(sid: string, ws: WebSocket): Session | null {
    return this.sessions.get(sid) ?? (this.ready ? Session.restore(sid, this.host(ws, this.ready)) : null);
  }

  /** Ends a session: aborts its requests, releases its fids and locks. */
  private endSession(sid: string, ws: WebSocket | null): void {
    const s = ws ? this.sessionFor(sid, ws) : (this.sessions.get(sid) ?? null);
    if (s) s.abandon();
    else if (this.ready) {
      // Not in memory and no socket to restore it with: release from SQLite.
      for (const f of this.store.fids(sid)) if (f.open && f.kind === "node") this.ready.fs.closed(f.ino);
    }
    this.sessions.delete(sid);
    if (ws) this.bySocket.delete(ws);
    this.store.end(sid, s !== null);
    this.ready?.fs.locks.dropSession(sid);
    this.ctx.waitUntil(this.scheduleAlarm());
  }
}

function outboxKey(a: Attachment | null): string {
  return `${a?.sid ?? ""}/${a?.gen ?? 0}`;
}

function sidOf(ws: WebSocket): string | null {
  const a = ws.deserializeAttachment() as Attachment | null;
  return a?.sid ?? null;
}
