// The sessions of a share's object, one per socket: found for a socket's
// messages (restored from SQLite after a hibernation), started, moved onto a
// resume's socket, detached when a resumable one's socket drops, and ended
// (by the client, an error, the idle timeout, the resume window, an
// operator), their fids and locks released.

import type { AlarmClock } from "./alarms.ts";
import { PEER_CLOSE } from "../protocol/index.ts";
import { CLOSE } from "./close-codes.ts";
import { DEFAULT_RESUME_WINDOW_MS } from "./config.ts";
import { HANDLERS } from "./handlers/index.ts";
import type { Leases } from "./leases.ts";
import type { Log } from "./log.ts";
import { Outbox } from "./outbox.ts";
import type { SessionStore } from "./session-store.ts";
import { FLUSH_MS, type SessionHost, Session } from "./session.ts";
import type { Ready } from "./share-setup.ts";
import { type Attachment, type Sockets, attach, attachmentOf, outboxKey, sidOf } from "./sockets.ts";
import type { SqlMeter } from "./sql-meter.ts";

export interface SessionsDeps {
  /** The object's waitUntil: keeps it alive for work not awaited. */
  waitUntil(p: Promise<unknown>): void;
  store: SessionStore;
  sockets: Sockets;
  meter: SqlMeter;
  alarms: AlarmClock;
  log: Log;
  /** The share the object serves, once it knows it. */
  ready(): Ready | null;
  /** The share's lease table, when it grants leases. */
  leases(): Leases | null;
}

export class Sessions {
  /**
   * Sessions by id. Keyed by the attachment's session id, not by the
   * WebSocket object: the object handed to webSocketMessage need not be the
   * one accepted, and two Session objects for one socket would each see
   * only part of its requests in flight.
   */
  private readonly sessions = new Map<string, Session>();
  /** Sessions by socket object, sparing a deserializeAttachment per message. */
  private readonly bySocket = new WeakMap<WebSocket, Session>();
  /** The pending batch write of the sessions' state (worker/session.ts), if any. */
  private flushTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly d: SessionsDeps) {}

  /** A new session on socket `ws`, which carries `a`; `secretHash` makes it resumable. */
  start(ws: WebSocket, a: Attachment, r: Ready, secretHash: string | null): void {
    attach(ws, a);
    this.sessions.set(a.sid, Session.start(a.sid, this.host(ws, r), secretHash));
  }

  /**
   * Moves a resumable session onto a resume's socket `ws`, which carries
   * `a` (the session's new generation); returns why not, if not. The old
   * socket, if the object still holds it, is closed as stale.
   */
  resumeOn(ws: WebSocket, a: Attachment, r: Ready): string | null {
    const sid = a.sid;
    for (const old of this.d.sockets.ofSession(sid)) {
      if (old === ws) continue;
      // The old socket's leases go with it: its client dropped them (docs/leases.md rule 5).
      this.d.leases()?.drop(outboxKey(attachmentOf(old)));
      attach(old, { ...attachmentOf(old)!, stale: true });
      this.bySocket.delete(old);
      this.d.sockets.close(old, CLOSE.REPLACED, "the session was resumed on another connection");
    }
    // The new socket's own credential decides its scope, whatever the old one's was.
    attach(ws, a);
    const s = this.sessions.get(sid) ?? Session.restore(sid, this.host(ws, r));
    if (!s) return `session ${sid} cannot be resumed: its state is gone`;
    s.resume(this.host(ws, r));
    this.sessions.set(sid, s);
    this.bySocket.set(ws, s);
    this.d.log.info(`[${r.name}] session ${sid} resumed`);
    return null;
  }

  /** The session of a socket, restored from SQLite after a hibernation. */
  of(ws: WebSocket): Session | null {
    const cached = this.bySocket.get(ws);
    if (cached) return cached;
    const a = attachmentOf(ws);
    if (!a || a.stale) return null;
    const sid = a.sid;
    let s = this.sessions.get(sid);
    if (s) {
      this.bySocket.set(ws, s);
      return s;
    }
    const r = this.d.ready();
    if (!r) return null;
    s = Session.restore(sid, this.host(ws, r)) ?? undefined;
    if (s) {
      this.sessions.set(sid, s);
      this.bySocket.set(ws, s);
    }
    return s ?? null;
  }

  private host(ws: WebSocket, r: Ready): SessionHost {
    // The socket's own scope (a read-only 9P URL) narrows the share's.
    const scopedReadOnly = attachmentOf(ws)?.readOnly === true;
    const leases = this.d.leases;
    return {
      fs: r.fs,
      store: this.d.store,
      budget: r.budget,
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
      outbox: this.d.sockets.outbox(ws, (a) => this.outbox(ws, a, r)),
      // The session ends (a protocol error, an idle timeout): not a detach.
      close: (code, reason) => {
        const sid = sidOf(ws);
        if (sid !== null) this.end(sid, ws);
        this.d.sockets.close(ws, code, reason);
      },
      log: (msg) => this.d.log.info(`[${r.name}] ${msg}`),
      // Most requests schedule nothing: skip the async work unless the publisher's epoch moved.
      changed: () => this.d.alarms.changed(),
      deferFlush: () => this.deferFlush(),
      // Read when used: the table is built once the share is known, perhaps after this host.
      get leases() {
        return leases();
      },
      leaseSocket: this.d.sockets.leaseSocket(ws),
    };
  }

  /** A new sending side for socket `ws`, which carries `a`. */
  private outbox(ws: WebSocket, a: Attachment | null, r: Ready): Outbox {
    return new Outbox(
      {
        send: (m) => ws.send(m),
        // The socket goes; a resumable session waits for its client as after
        // any drop (a paused VM behind the bridge reads again later), any
        // other ends.
        cut: (reason) => {
          this.d.sockets.notReading++;
          this.d.log.info(`[${r.name}] session ${a?.sid}: ${reason}; closing (${CLOSE.NOT_READING})`);
          const s = a ? this.sessions.get(a.sid) : undefined;
          if (s && !s.resumable) return s.end(CLOSE.NOT_READING, reason);
          this.d.sockets.close(ws, CLOSE.NOT_READING, reason);
          this.socketGone(ws);
        },
      },
      r.budget,
      { window: r.config.session_window_bytes, stallMs: r.config.session_stall_ms, acks: a?.acks === true },
    );
  }

  /**
   * Writes the sessions' batched state within FLUSH_MS. The timer also
   * keeps the object from hibernating before it has run (an object with a
   * pending timer is not idle: docs/platform.md).
   */
  private deferFlush(): void {
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.d.meter.run("fid flush", () => this.flush());
    }, FLUSH_MS);
  }

  private flush(): void {
    try {
      for (const s of this.sessions.values()) s.writeBatch();
    } catch (e) {
      // The object is going away (a restart): what was not written goes with its sockets.
      this.d.log.error(`ShareObject.flushSessions: ${(e as Error).message}`);
    }
  }

  /**
   * Ends the sessions whose socket is gone: a restart or deploy closes
   * sockets without webSocketClose ever running (platform facts). Their
   * fids are released (open files closed, so unlinked ones go and written
   * ones get published) and their locks dropped.
   */
  sweep(): void {
    const fs = this.d.ready()?.fs;
    const swept = this.d.store.sweep(this.d.sockets.liveSids(), (f) => {
      if (f.open && f.kind === "node") fs?.closed(f.ino);
    });
    for (const sid of swept) fs?.locks.dropSession(sid);
    // Fids of those sessions that had no row yet were lost with them.
    if (swept.length) fs?.settleLostFids();
    if (swept.length) this.d.log.info(`swept ${swept.length} sessions whose sockets are gone`);
    this.evictDetached();
    // Resumable sessions left waiting for their clients end by the alarm.
    if (swept.length || this.d.store.oldestDetached() !== null) this.d.alarms.soon();
  }

  /** A request failed outside every handler: log it and end that session only. */
  failed(ws: WebSocket, e: unknown): void {
    this.d.log.error(`ShareObject.webSocketMessage: ${(e as Error).stack ?? e}`);
    try {
      this.socketGone(ws);
      ws.close(CLOSE.INTERNAL, "internal error");
    } catch {
      // The object or the socket is already gone (a restart).
    }
  }

  /** The client closed socket `ws` (webSocketClose). */
  closed(ws: WebSocket, code: number, reason: string): void {
    try {
      // A client that closes normally is done with its session; any other
      // end may be a drop that a resumable client comes back from.
      this.socketGone(ws, code === CLOSE.NORMAL);
      this.d.sockets.gone(ws);
      // The object must answer the close itself (platform facts); 1005, 1006
      // and 1015 are reserved and cannot be sent (RFC 6455, 7.4.1).
      const reserved = code === PEER_CLOSE.NO_STATUS || code === PEER_CLOSE.ABNORMAL || code === PEER_CLOSE.TLS;
      ws.close(reserved ? CLOSE.NORMAL : code, reason);
    } catch (e) {
      this.d.log.error(`ShareObject.webSocketClose: ${(e as Error).message}`);
    }
  }

  /** Socket `ws` failed (webSocketError): it is gone. */
  errored(ws: WebSocket): void {
    this.socketGone(ws);
    this.d.sockets.gone(ws);
  }

  /**
   * The socket is gone. A resumable session waits for its client (for the
   * resume window) unless `ended`; any other ends. A stale socket of a
   * resumed session changes nothing.
   */
  private socketGone(ws: WebSocket, ended = false): void {
    const a = attachmentOf(ws);
    if (!a) return;
    // Its client dropped every lease with the socket (docs/leases.md rule 5): nothing waits for its acks.
    this.d.leases()?.drop(outboxKey(a));
    this.bySocket.delete(ws);
    const resumable = this.d.store.resumeOf(a.sid);
    if (resumable && a.socketGen !== resumable.socketGen) return;
    if (resumable && !ended) {
      this.d.store.setDetached(a.sid, Date.now());
      const s = this.sessionFor(a.sid, ws);
      s?.detach();
      if (s) this.sessions.set(a.sid, s);
      this.evictDetached();
      this.d.alarms.reconsider();
      this.d.alarms.soon();
      return;
    }
    this.end(a.sid, ws);
  }

  /** The session in memory, or restored from SQLite onto `ws`. */
  private sessionFor(sid: string, ws: WebSocket): Session | null {
    const r = this.d.ready();
    return this.sessions.get(sid) ?? (r ? Session.restore(sid, this.host(ws, r)) : null);
  }

  /** Ends a session: aborts its requests, releases its fids and locks. */
  private end(sid: string, ws: WebSocket | null): void {
    const r = this.d.ready();
    const s = ws ? this.sessionFor(sid, ws) : (this.sessions.get(sid) ?? null);
    if (s) s.abandon();
    else if (r) {
      // Not in memory and no socket to restore it with: release from SQLite.
      for (const f of this.d.store.fids(sid)) if (f.open && f.kind === "node") r.fs.closed(f.ino);
    }
    this.sessions.delete(sid);
    if (ws) {
      this.bySocket.delete(ws);
      this.d.leases()?.drop(outboxKey(attachmentOf(ws)));
    }
    this.d.store.end(sid, s !== null);
    r?.fs.dropSessionLocks(sid);
    this.d.alarms.soon();
  }

  /** Ends the sessions that have waited longest while more than max_detached_sessions wait. */
  private evictDetached(): void {
    const max = this.d.ready()?.config.max_detached_sessions;
    if (max === undefined) return;
    const over = this.d.store.countDetached() - max;
    if (over <= 0) return;
    for (const sid of this.d.store.longestDetached(over)) {
      this.d.log.info(`session ${sid}: ended while waiting for its client: more than ${max} sessions wait (EDGE9P.max_detached_sessions)`);
      this.end(sid, null);
    }
  }

  /** How long a resumable session waits for its client (ms). */
  resumeWindow(): number {
    return this.d.ready()?.config.resume_window_ms ?? DEFAULT_RESUME_WINDOW_MS;
  }

  /** Ends the resumable sessions whose clients did not come back within the window (an alarm's work). */
  endUnresumed(): void {
    for (const sid of this.d.store.detachedBefore(Date.now() - this.resumeWindow())) {
      this.d.log.info(`session ${sid}: not resumed within ${this.resumeWindow()} ms; ended`);
      this.end(sid, null);
    }
  }

  /** Closes the sessions idle past EDGE9P.idle_timeout_ms (an alarm's work). */
  closeIdle(): void {
    const idle = this.d.ready()?.config.idle_timeout_ms ?? 0;
    if (idle <= 0) return;
    // Only the idle sessions' own sockets, found by their tag.
    for (const sid of new Set(this.d.store.idleSince(Date.now() - idle))) {
      for (const ws of this.d.sockets.ofSession(sid)) {
        // Ended, not detached: a resumable client must not come back to it.
        this.end(sid, ws);
        this.d.sockets.close(ws, CLOSE.IDLE, `no request for ${Math.round(idle / 1000)} s`);
      }
    }
  }

  /**
   * Closes every socket of the share (an operator's drain): sessions that
   * can resume carry on on a new socket, the others end. Returns the number
   * of sockets closed.
   */
  drain(): number {
    const all = this.d.sockets.all();
    for (const ws of all) {
      this.d.sockets.close(ws, CLOSE.DRAIN, "the gateway closed this connection: resume or reconnect");
      this.socketGone(ws);
    }
    return all.length;
  }

  /** Ends the sessions opened through a signed 9P URL (the share's links were rotated), 4007. */
  endSigned(): void {
    for (const ws of this.d.sockets.signed()) {
      this.end(attachmentOf(ws)!.sid, ws);
      this.d.sockets.close(ws, CLOSE.REVOKED, "the share's signed URLs were revoked (links rotated): ask for a new one");
    }
  }
}
