// The share object's sockets: accepting them with the hibernation API,
// finding them again (by session, by scope), what each carries across a
// hibernation (its attachment), and each one's sending side.

import type { LeaseSocket } from "./leases.ts";
import type { Outbox } from "./outbox.ts";

/** What a socket carries across a hibernation (serializeAttachment). */
export interface Attachment {
  sid: string;
  /** Which of a resumable session's sockets this is (the session row's count of resumes): only the latest counts. */
  socketGen?: number;
  /** The client acknowledges marks ("9p.ack"). */
  acks?: boolean;
  /** A socket replaced by a resume: its late messages must not reach the session. */
  stale?: boolean;
  /** Opened through a read-only signed 9P URL: every change answers EROFS. */
  readOnly?: boolean;
  /** Opened through a signed 9P URL: rotating the share's links ends it. */
  signed?: boolean;
  /**
   * The client asked for leases and was answered a term (docs/leases.md):
   * kept here so that an object waking from hibernation knows which
   * sockets may hold leases it no longer remembers (rule 5).
   */
  leases?: boolean;
}

/** The scope a socket's credential gives it (a signed 9P URL's), beside the share's. */
export type Scope = Pick<Attachment, "readOnly" | "signed">;

export function attachmentOf(ws: WebSocket): Attachment | null {
  return ws.deserializeAttachment() as Attachment | null;
}

export function attach(ws: WebSocket, a: Attachment): void {
  ws.serializeAttachment(a);
}

export function sidOf(ws: WebSocket): string | null {
  return attachmentOf(ws)?.sid ?? null;
}

/*
 * Hibernation tags let the object find the sockets of one session, or the
 * signed ones, with ctx.getWebSockets(tag) instead of reading every socket's
 * attachment. Cloudflare's Durable Objects WebSocket API
 * (https://developers.cloudflare.com/durable-objects/api/websockets/):
 * tags are given once, to acceptWebSocket(ws, tags), and cannot change
 * afterwards; a socket has at most 10, each at most 256 characters;
 * getWebSockets(tag) returns the sockets accepted with that tag, and the
 * tags survive a hibernation as the sockets do. A deploy or restart closes
 * every socket (docs/platform.md), so no socket accepted before tags were
 * given outlives a deploy of this code.
 *
 * A tag only narrows the search; the attachment decides. A resume's socket
 * is tagged with the session it claims before the claim is checked (a
 * refused one has no attachment), and a resume marks the old socket stale
 * in its attachment, where a tag cannot follow.
 */
const SIGNED_TAG = "signed";

/**
 * The tag of a session's sockets. Session ids are UUIDs; a resume may claim
 * anything, and a claim that is not an id names no session (the resume is
 * refused), so it gets no tag rather than one over the platform's limit.
 */
function sessionTag(sid: string): string | null {
  return /^[0-9A-Za-z-]{1,64}$/.test(sid) ? `sid:${sid}` : null;
}

/** The key of a socket's outbox (and lease holder): its session and which of the session's sockets it is. */
export function outboxKey(a: Attachment | null): string {
  return `${a?.sid ?? ""}/${a?.socketGen ?? 0}`;
}

export class Sockets {
  /**
   * Each socket's sending side (worker/outbox.ts), by session id and socket
   * generation. It lives until the socket is really gone (webSocketClose or
   * webSocketError), not when the session ends: bytes queued on a socket
   * the gateway closed stay in workerd until the peer's connection goes.
   */
  private readonly outboxes = new Map<string, Outbox>();
  /** Unread bytes on sockets the gateway closed whose peers have not gone yet. */
  private strandedBytes = 0;
  /** Sockets closed because their clients left replies unread (4006). */
  notReading = 0;

  constructor(private readonly ctx: DurableObjectState) {}

  /** Accepts a socket for session `sid` (claimed, for a resume); `signed` if a signed 9P URL opened it. */
  accept(ws: WebSocket, sid: string, signed: boolean): void {
    const tags: string[] = [];
    const tag = sessionTag(sid);
    if (tag !== null) tags.push(tag);
    if (signed) tags.push(SIGNED_TAG);
    this.ctx.acceptWebSocket(ws, tags);
  }

  /** Every socket still open or closing (a closed socket's unread replies stay in workerd until its peer goes). */
  all(): WebSocket[] {
    return this.ctx.getWebSockets();
  }

  /** The sockets of session `sid`, stale ones (replaced by a resume) included. */
  ofSession(sid: string): WebSocket[] {
    const tag = sessionTag(sid);
    return tag === null ? [] : this.ctx.getWebSockets(tag).filter((ws) => sidOf(ws) === sid);
  }

  /** The sockets opened through a signed 9P URL that still carry their session. */
  signed(): WebSocket[] {
    return this.ctx.getWebSockets(SIGNED_TAG).filter((ws) => {
      const a = attachmentOf(ws);
      return a?.signed === true && !a.stale;
    });
  }

  /** The sessions that have a socket. */
  liveSids(): Set<string> {
    const live = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const sid = sidOf(ws);
      if (sid) live.add(sid);
    }
    return live;
  }

  /** The sending side of a socket, made by `make` on first use. */
  outbox(ws: WebSocket, make: (a: Attachment | null) => Outbox): Outbox {
    const a = attachmentOf(ws);
    const key = outboxKey(a);
    let o = this.outboxes.get(key);
    if (o) return o;
    o = make(a);
    this.outboxes.set(key, o);
    return o;
  }

  /**
   * The lease side of a socket that negotiated leases (worker/leases.ts),
   * or null. Its texts go out with ws.send, in order with its replies.
   */
  leaseSocket(ws: WebSocket): LeaseSocket | null {
    const a = attachmentOf(ws);
    if (!a?.leases || a.stale) return null;
    return {
      key: outboxKey(a),
      send: (text) => {
        try {
          ws.send(text);
        } catch {
          // closing: its client drops every lease with the socket (rule 5)
        }
      },
      renewedAt: () => this.ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime() ?? null,
    };
  }

  /** The open sockets that negotiated leases (rule 5, after a wake). */
  leaseSockets(): LeaseSocket[] {
    return this.ctx.getWebSockets().flatMap((ws) => this.leaseSocket(ws) ?? []);
  }

  /** Reply bytes sent on the share's sockets and not yet read by their clients. */
  unread(): number {
    let n = 0;
    for (const o of this.outboxes.values()) n += o.unread;
    return n;
  }

  /** Unread bytes on sockets the gateway closed whose peers have not gone yet. */
  get stranded(): number {
    return this.strandedBytes;
  }

  /** The socket is gone for good: what its outbox held is free. */
  gone(ws: WebSocket): void {
    const key = outboxKey(attachmentOf(ws));
    const o = this.outboxes.get(key);
    if (!o) return;
    o.closed();
    this.strandedBytes -= o.stranded;
    this.outboxes.delete(key);
  }

  /**
   * Closes a socket from the gateway's side. Its outbox gives its budget
   * back at once; what it left unread stays counted as stranded until the
   * socket is really gone (a peer that never reads keeps it in workerd).
   */
  close(ws: WebSocket, code: number, reason: string): void {
    const o = this.outboxes.get(outboxKey(attachmentOf(ws)));
    if (o && o.stranded === 0) {
      o.strand();
      this.strandedBytes += o.stranded;
    }
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // already closing
    }
  }
}
