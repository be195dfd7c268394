// The share's Durable Object: one per bucket + prefix. It terminates the 9P
// sessions (one per WebSocket, accepted with the hibernation API) and owns
// the share's namespace in its SQLite. This file holds only the object's
// entry points; each hands its work to the module of its concern:
// worker/sockets.ts (the sockets, their tags, attachments and outboxes),
// worker/sessions.ts (the sessions on them), worker/upgrade.ts (a socket's
// opening and the resume handshake), worker/alarms.ts (the one alarm),
// worker/share-setup.ts (the share's filesystem), worker/stats.ts.

import type { CheckReport } from "../storage/fsck.ts";
import { Meta } from "../storage/meta.ts";
import { DurableObject } from "cloudflare:workers";
import { nameOfId } from "../protocol/index.ts";
import { LEASE_RENEW, LEASE_RENEWED } from "../protocol/leases.ts";
import { Leases } from "./leases.ts";
import { AlarmClock, idleDeadline, resumeDeadline } from "./alarms.ts";
import { serveFile } from "./files.ts";
import { type Access, linkKeyOf, linkKeysOf, refusedLink, rotateLinkKey, sign9pUrl, signLink } from "./links.ts";
import { CLOSE } from "./close-codes.ts";
import { configOf } from "./env.ts";
import { type Log, logFor } from "./log.ts";
import { SessionStore } from "./session-store.ts";
import { Sessions } from "./sessions.ts";
import { type Ready, openShare } from "./share-setup.ts";
import { Sockets } from "./sockets.ts";
import { SqlMeter } from "./sql-meter.ts";
import { type ShareStats, shareStats } from "./stats.ts";
import { FILE_HEADER, LINK_HEADER, NINEP_LINK_HEADER, SHARE_HEADER } from "./object-headers.ts";
import { upgrade } from "./upgrade.ts";

export type { ShareStats };

export class ShareObject extends DurableObject<Env> {
  private readonly meter: SqlMeter;
  private readonly sql: SqlStorage;
  /** The meta table (storage/meta.ts): this object's boots, and which share it is. */
  private readonly meta: Meta;
  private readonly store: SessionStore;
  private readonly sockets: Sockets;
  private readonly sessions: Sessions;
  private readonly alarms: AlarmClock;
  private ready: Ready | null = null;
  /** The lease table (worker/leases.ts), once the share is known and if it grants leases. */
  private leases: Leases | null = null;

  /**
   * Log lines at EDGE9P.log's level (errors only if the configuration does
   * not parse). Read per line: configOf parses once per isolate, and logFor
   * hands out one Log per level.
   */
  private readonly log: Log = {
    info: (msg) => this.logger().info(msg),
    error: (msg) => this.logger().error(msg),
  };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.meter = new SqlMeter(ctx.storage.sql);
    this.sql = this.meter.sql;
    this.meta = new Meta(this.sql);
    this.store = new SessionStore(this.sql);
    this.sockets = new Sockets(ctx);
    const waitUntil = (p: Promise<unknown>) => ctx.waitUntil(p);
    // Every timer is multiplexed onto the one alarm; when it fires, idle
    // sessions close, unresumed ones end, then the publisher runs.
    this.alarms = new AlarmClock(
      ctx.storage,
      waitUntil,
      () => this.ready?.fs.publishEpoch ?? 0,
      [
        {
          // The store is asked only when sessions can be idle at all.
          deadline: () => {
            const idle = this.ready?.config.idle_timeout_ms ?? 0;
            return idle > 0 ? idleDeadline(this.store.oldestActive(), idle) : null;
          },
          due: () => this.sessions.closeIdle(),
        },
        {
          deadline: () => resumeDeadline(this.store.oldestDetached(), this.sessions.resumeWindow()),
          due: () => this.sessions.endUnresumed(),
        },
        { deadline: () => this.ready?.fs.nextWakeup() ?? null, due: () => this.ready?.fs.runDue() },
      ],
      this.log,
      () => this.ready?.fs.takeWakeBy() ?? -Infinity,
    );
    this.sessions = new Sessions({
      waitUntil,
      store: this.store,
      sockets: this.sockets,
      meter: this.meter,
      alarms: this.alarms,
      log: this.log,
      ready: () => this.ready,
      leases: () => this.leases,
    });
    this.meter.run("start", () => {
      // Counts constructions: each wake-up from hibernation is one.
      this.meta.add("boots", 1);
      const share = this.meta.get("share");
      if (share !== null) this.init(share as string);
      this.sessions.sweep();
    });
  }

  private logger(): Log {
    return logFor(configOf(this.env));
  }

  /** The share's filesystem, built on first use; null (and a log line) if the configuration is bad. */
  private init(name: string): Ready | null {
    if (this.ready?.name === name) return this.ready;
    const r = openShare(this.env, this.meter, this.store, this.log, this.ready, name);
    if (r) {
      this.ready = r;
      this.startLeases(r);
    }
    return r;
  }

  /**
   * The lease table of the share (docs/leases.md), fed by every change the
   * namespace makes. Built once per construction: a wake from hibernation
   * or a restart starts it empty, so every lease socket still open is
   * recalled `all` (rule 5). A renew is answered by the platform, without
   * waking the object.
   */
  private startLeases(r: Ready): void {
    if (!r.config.leases || this.leases) return;
    const leases = new Leases({ termMs: r.config.lease_term_ms, maxPerSocket: r.config.lease_max_per_session });
    this.leases = leases;
    r.fs.ns.onChange = (ino) => leases.changed(ino);
    this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(LEASE_RENEW, LEASE_RENEWED));
    leases.woke(this.sockets.leaseSockets());
  }

  override async fetch(request: Request): Promise<Response> {
    return this.meter.run("fetch", () => this.serve(request));
  }

  /** GET .../files/<path> (a file, with a token or a signed link), or a 9P socket's upgrade. */
  private async serve(request: Request): Promise<Response> {
    const name = request.headers.get(SHARE_HEADER);
    const r = name ? this.init(name) : null;
    if (!r) return new Response("share not configured\n", { status: 500 });
    const file = request.headers.get(FILE_HEADER);
    if (file !== null) {
      const refused = await refusedLink(request.headers.get(LINK_HEADER), (now) => linkKeysOf(this.sql, now), r.name, file);
      if (refused) return refused;
      // A read here may import another tool's change from R2: its response waits for the recalls (rule 1).
      const leases = this.leases;
      return leases ? leases.changing(() => serveFile(r.fs, file, request)) : serveFile(r.fs, file, request);
    }
    const deps = { sql: this.sql, store: this.store, sockets: this.sockets, sessions: this.sessions, log: this.log };
    return upgrade(deps, request, r, request.headers.get(NINEP_LINK_HEADER));
  }

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    try {
      const s = this.sessions.of(ws);
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
      this.ctx.waitUntil(this.meter.run(kind, () => s.receive(bytes)).catch((e) => this.sessions.failed(ws, e)));
    } catch (e) {
      this.sessions.failed(ws, e);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.meter.run("close", () => this.sessions.closed(ws, code, reason));
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.log.error(`ShareObject.webSocketError: ${error instanceof Error ? error.message : String(error)}`);
    this.meter.run("close", () => this.sessions.errored(ws));
  }

  /** Runs what is due; may run more than once for one time (handlers are idempotent). */
  override async alarm(): Promise<void> {
    return this.meter.run("alarm", () => this.alarms.fire());
  }

  /** stats() of a share's object, started for it if it was not (GET /v1/shares/NAME/stats). */
  async statsOf(name: string): Promise<ShareStats | null> {
    return this.init(name) ? this.stats() : null;
  }

  /** Figures about this object, for tests, benchmarks and operators. */
  stats(): ShareStats {
    return shareStats({ meter: this.meter, store: this.store, sockets: this.sockets, ready: this.ready, leases: this.leases });
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
    return this.sessions.drain();
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
    this.sessions.endSigned();
    return now;
  }

  /** Publishes every unpublished change now (tests, benchmarks, an operator's sync). */
  async publishAll(): Promise<void> {
    await this.ready?.fs.publishAll();
    this.alarms.reconsider();
    await this.alarms.schedule();
  }
}
