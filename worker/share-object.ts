// The share's Durable Object: one per bucket + prefix. It terminates the 9P
// sessions (one per WebSocket, accepted with the hibernation API) and owns
// the share's namespace in its SQLite.

import type { CheckReport } from "../storage/fsck.ts";
import { DurableObject } from "cloudflare:workers";
import { PLATFORM_MSIZE_CEILING_SOURCE } from "../protocol/index.ts";
import type { PublishStats } from "../storage/publisher.ts";
import { ShareFs } from "../storage/share-fs.ts";
import { ByteBudget } from "./budget.ts";
import { CLOSE } from "./close-codes.ts";
import { type Config, type ShareConfig, objectName } from "./config.ts";
import { bucketOf, configOf, fsidOf } from "./env.ts";
import { HANDLERS } from "./handlers/index.ts";
import { SessionStore } from "./session-store.ts";
import { type SessionHost, Session } from "./session.ts";

/** Header the worker sets when it hands a request to the object. */
export const SHARE_HEADER = "X-Edge9p-Share";
export const SUBPROTOCOL = "9p";

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
}

interface Attachment {
  sid: string;
}

interface Ready {
  name: string;
  share: ShareConfig;
  config: Config;
  fs: ShareFs;
}

export class ShareObject extends DurableObject<Env> {
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

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v)`);
    this.store = new SessionStore(this.sql);
    // Counts constructions: each wake-up from hibernation is one.
    this.sql.exec(`INSERT INTO meta (k, v) VALUES ('boots', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1`);
    const rows = this.sql.exec(`SELECT v FROM meta WHERE k = 'share'`).toArray();
    if (rows.length) this.init(rows[0]!.v as string);
    this.sweep();
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
    if (swept.length) {
      console.log(`swept ${swept.length} sessions whose sockets are gone`);
      this.ctx.waitUntil(this.scheduleAlarm());
    }
  }

  /** Builds the share's filesystem; null (and a log line) if the configuration is bad. */
  private init(name: string): Ready | null {
    if (this.ready?.name === name) return this.ready;
    const c = configOf(this.env);
    if (!c.ok) {
      console.error(c.error);
      return null;
    }
    const share = c.config.shares[name];
    if (!share) {
      console.error(`share ${name} is no longer configured`);
      return null;
    }
    const oname = objectName(share);
    const fs = new ShareFs(
      this.sql,
      bucketOf(this.env, share),
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
        publishDelayMs: c.config.publish_delay_ms,
        multipartThreshold: c.config.multipart_threshold,
        maxDepth: c.config.max_depth,
      },
      (msg) => console.log(`[${name}] ${msg}`),
      (n) => this.budget!.acquire(n),
    );
    this.sql.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES ('share', ?)`, name);
    this.budget ??= new ByteBudget(c.config.inflight_bytes);
    this.ready = { name, share, config: c.config, fs };
    return this.ready;
  }

  private host(ws: WebSocket, r: Ready): SessionHost {
    return {
      fs: r.fs,
      store: this.store,
      budget: this.budget!,
      handlers: HANDLERS,
      limits: {
        msizeCap: r.config.msize_cap,
        capSource: "EDGE9P.msize_cap",
        iounit: r.config.iounit,
        readOnly: r.share.read_only,
        maxFids: r.config.max_fids,
        maxInflight: r.config.max_inflight,
        idleTimeoutMs: r.config.idle_timeout_ms,
      },
      send: (bytes) => ws.send(bytes),
      close: (code, reason) => {
        this.forget(ws);
        try {
          ws.close(code, reason.slice(0, 120));
        } catch (e) {
          console.error(`close failed: ${(e as Error).message}`);
        }
      },
      log: (msg) => console.log(`[${r.name}] ${msg}`),
      // Most requests schedule nothing: skip the async work unless the publisher's epoch moved.
      changed: () => {
        if ((this.ready?.fs.publisher.epoch ?? 0) !== this.alarmEpoch) this.ctx.waitUntil(this.scheduleAlarm());
      },
    };
  }

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
      console.error(`ShareObject.scheduleAlarm: ${(e as Error).message}`);
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
    if (next === null) return;
    if (this.alarmAt === null) this.alarmAt = await this.ctx.storage.getAlarm();
    const at = Math.max(next, Date.now() + 1);
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /** Runs what is due; may run more than once for one time (handlers are idempotent). */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    this.alarmEpoch = -1;
    try {
      this.closeIdle();
      await this.ready?.fs.runDue();
    } catch (e) {
      console.error(`ShareObject.alarm: ${(e as Error).stack ?? e}`);
    }
    this.alarmAt = null;
    this.alarmEpoch = -1;
    await this.scheduleAlarm();
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
      this.forget(ws);
      try {
        ws.close(CLOSE.IDLE, `no request for ${Math.round(idle / 1000)} s`);
      } catch {
        // already closing
      }
    }
  }

  /** The share's consistency check (storage/fsck.ts), for GET /v1/shares/NAME/check. */
  async check(name: string): Promise<CheckReport | null> {
    return this.init(name)?.fs.check() ?? null;
  }

  /** Publishes every unpublished change now (tests, benchmarks, an operator's sync). */
  async publishAll(): Promise<void> {
    await this.ready?.fs.publishAll();
    this.alarmEpoch = -1;
    await this.scheduleAlarm();
  }

  override async fetch(request: Request): Promise<Response> {
    const name = request.headers.get(SHARE_HEADER);
    const r = name ? this.init(name) : null;
    if (!r) return new Response("share not configured\n", { status: 500 });
    const open = this.ctx.getWebSockets().length;
    if (open >= r.config.max_sessions) {
      return Response.json(
        { error: `share ${name} has ${open} sessions, its limit (EDGE9P.max_sessions); try again later` },
        { status: 503, headers: { "Retry-After": "5" } },
      );
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const sid = crypto.randomUUID();
    server.serializeAttachment({ sid } satisfies Attachment);
    this.sessions.set(sid, Session.start(sid, this.host(server, r)));
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: {
        "Sec-WebSocket-Protocol": SUBPROTOCOL,
        "X-Edge9p-Session": sid,
        "X-Edge9p-Msize-Max": String(r.config.msize_cap),
        "X-Edge9p-Msize-Reason":
          r.config.msize_cap < 33_554_432 ? "operator cap EDGE9P.msize_cap" : PLATFORM_MSIZE_CEILING_SOURCE,
      },
    });
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
    };
  }

  /** The session of a socket, restored from SQLite after a hibernation. */
  private sessionOf(ws: WebSocket): Session | null {
    const cached = this.bySocket.get(ws);
    if (cached) return cached;
    const sid = sidOf(ws);
    if (sid === null) return null;
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
      if (typeof message === "string") {
        s.end(CLOSE.UNSUPPORTED, "9P messages are binary WebSocket messages");
        return;
      }
      // Not awaited: workerd delivers a socket's next message only once this
      // handler returns, and requests must run concurrently (many tags in
      // flight, replies in any order). waitUntil keeps the object alive for it.
      this.ctx.waitUntil(s.receive(new Uint8Array(message)).catch((e) => this.failed(ws, e)));
    } catch (e) {
      this.failed(ws, e);
    }
  }

  /** A request failed outside every handler: log it and end that session only. */
  private failed(ws: WebSocket, e: unknown): void {
    console.error(`ShareObject.webSocketMessage: ${(e as Error).stack ?? e}`);
    try {
      this.forget(ws);
      ws.close(CLOSE.INTERNAL, "internal error");
    } catch {
      // The object or the socket is already gone (a restart).
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      this.forget(ws);
      // The object must answer the close itself (platform facts); 1005, 1006
      // and 1015 are reserved and cannot be sent.
      ws.close(code === 1005 || code === 1006 || code === 1015 ? CLOSE.NORMAL : code, reason);
    } catch (e) {
      console.error(`ShareObject.webSocketClose: ${(e as Error).message}`);
    }
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    console.error(`ShareObject.webSocketError: ${error instanceof Error ? error.message : String(error)}`);
    this.forget(ws);
  }

  /** Ends the socket's session: aborts its requests and releases its fids. */
  private forget(ws: WebSocket): void {
    const sid = sidOf(ws);
    if (sid === null) return;
    const s = this.sessions.get(sid) ?? (this.ready ? Session.restore(sid, this.host(ws, this.ready)) : null);
    s?.abandon();
    this.sessions.delete(sid);
    this.bySocket.delete(ws);
    this.store.end(sid);
    this.ready?.fs.locks.dropSession(sid);
    this.ctx.waitUntil(this.scheduleAlarm());
  }
}

function sidOf(ws: WebSocket): string | null {
  const a = ws.deserializeAttachment() as Attachment | null;
  return a?.sid ?? null;
}
