// A small promise-based 9P client over any message transport: many requests
// in flight, tags allocated and recycled, Tflush through AbortSignal. Used by
// the tests, the benchmarks and the CLI.

import { decode, encode } from "./codec.ts";
import { NOTAG } from "./constants.ts";
import type { Dialect } from "./dialect.ts";
import { ERRNO } from "./errno.ts";
import { FramingError, MessageError, P9Error } from "./errors.ts";
import type { Message, MessageInit, Msg, MsgInit, ReplyName, TName } from "./messages.ts";
import { ackText, parseMark } from "./websocket.ts";

/** Sends one whole message; the transport keeps message boundaries. */
export interface Transport {
  send(message: Uint8Array): void;
  close(): void;
}

export type RequestInit<T extends TName> = { type: T } & Omit<MsgInit<T>, "tag" | "type">;
/** Any request, before its tag is chosen. */
export type AnyRequestInit = { [N in TName]: RequestInit<N> }[TName];

interface Pending {
  readonly expect: string;
  resolve(m: Message): void;
  reject(e: Error): void;
  /** A Tflush was sent for this request: its tag is held until Rflush. */
  flushed: boolean;
  /** The reply (or error) already arrived and was delivered. */
  settled: boolean;
}

/** The largest tag a request may use: NOTAG (0xFFFF) belongs to Tversion. */
const MAX_TAG = NOTAG - 1;

export class Client {
  dialect: Dialect = "9P2000.L";
  /** Until Rversion: the smallest msize any server accepts. */
  msize = 4096;
  private readonly pending = new Map<number, Pending>();
  private closed: Error | null = null;
  private nextFid = 1;
  private readonly freeFids: number[] = [];

  constructor(private readonly transport: Transport) {}

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Feeds one message received from the transport. */
  receive(bytes: Uint8Array): void {
    let msg: Message;
    try {
      msg = decode(bytes, this.dialect);
    } catch (e) {
      if (e instanceof MessageError && e.tag !== null && this.pending.has(e.tag)) {
        this.settle(e.tag, null, new P9Error(ERRNO.EPROTO, `malformed reply: ${e.message}`));
        return;
      }
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.settle(msg.tag, msg, null);
  }

  /** The transport is gone: every pending and later request fails with `err`. */
  fail(err: Error): void {
    if (this.closed) return;
    this.closed = err;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) if (!p.settled) p.reject(err);
  }

  close(): void {
    this.fail(new Error("client closed"));
    this.transport.close();
  }

  private settle(tag: number, msg: Message | null, err: Error | null): void {
    const p = this.pending.get(tag);
    if (p === undefined) return; // a reply to nothing we asked: ignore it
    // A flushed request keeps its tag until its Rflush arrives (flush(5)).
    if (!p.flushed) this.pending.delete(tag);
    if (p.settled) return;
    p.settled = true;
    if (err) return p.reject(err);
    const m = msg!;
    if (m.type === p.expect) return p.resolve(m);
    if (m.type === "Rlerror") return p.reject(new P9Error(m.ecode));
    if (m.type === "Rerror") {
      const text = new TextDecoder().decode(m.ename);
      return p.reject(new P9Error(m.errno ?? ERRNO.EIO, text));
    }
    p.reject(new P9Error(ERRNO.EPROTO, `expected ${p.expect}, got ${m.type}`));
  }

  /**
   * The lowest free tag, as Linux allocates them (idr_alloc in
   * net/9p/client.c): a server that sees a tag used again knows its last
   * reply arrived (worker/outbox.ts counts on it for plain 9P clients).
   */
  private allocTag(): number {
    for (let tag = 0; tag <= MAX_TAG; tag++) if (!this.pending.has(tag)) return tag;
    throw new P9Error(ERRNO.EAGAIN, "all 65535 tags are in flight");
  }

  /** A fid number not in use by this client (returned by releaseFid). */
  allocFid(): number {
    return this.freeFids.pop() ?? this.nextFid++;
  }

  releaseFid(fid: number): void {
    this.freeFids.push(fid);
  }

  /**
   * Sends a request and resolves with its reply; an Rlerror/Rerror rejects
   * with P9Error. Aborting the signal sends Tflush: the request then rejects
   * with the signal's reason, unless its reply arrived first (flush(5)).
   */
  request<T extends TName>(
    init: RequestInit<T>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<Msg<ReplyName<T>>> {
    if (this.closed) return Promise.reject(this.closed);
    const tag = init.type === "Tversion" ? NOTAG : this.allocTag();
    const expect = `R${init.type.slice(1)}`;
    const bytes = encode({ ...init, tag } as unknown as MessageInit, this.dialect);
    return new Promise<Msg<ReplyName<T>>>((resolve, reject) => {
      const p: Pending = {
        expect,
        resolve: resolve as (m: Message) => void,
        reject,
        flushed: false,
        settled: false,
      };
      this.pending.set(tag, p);
      const { signal } = opts;
      if (signal) {
        if (signal.aborted) {
          this.pending.delete(tag);
          return reject(signal.reason);
        }
        signal.addEventListener("abort", () => this.flushTag(tag, p, signal.reason), { once: true });
      }
      this.transport.send(bytes);
    });
  }

  private flushTag(tag: number, p: Pending, reason: unknown): void {
    if (p.settled || this.closed) return;
    p.flushed = true;
    const done = () => {
      this.pending.delete(tag);
      if (!p.settled) {
        p.settled = true;
        p.reject(reason instanceof Error ? reason : new Error(String(reason)));
      }
    };
    this.request({ type: "Tflush", oldtag: tag }).then(done, done);
  }

  /** Tversion: adopts the server's msize and dialect (or fails on "unknown"). */
  async version(msize: number, version: Dialect = "9P2000.L"): Promise<{ msize: number; version: Dialect }> {
    const r = await this.request({ type: "Tversion", msize, version });
    const v = new TextDecoder().decode(r.version);
    if (v !== "9P2000.L" && v !== "9P2000.u" && v !== "9P2000") {
      throw new P9Error(ERRNO.EPROTO, `server answered version ${JSON.stringify(v)}`);
    }
    if (r.msize > msize) throw new P9Error(ERRNO.EPROTO, `server raised msize ${msize} to ${r.msize}`);
    this.dialect = v;
    this.msize = r.msize;
    return { msize: r.msize, version: v };
  }
}

/** The structural part of the standard WebSocket API the client needs. */
export interface WebSocketLike {
  binaryType: string;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: string, listener: (ev: any) => void): void;
}

/**
 * A client over a WebSocket that is open (or opening: sends made before it
 * opens are the caller's concern). One binary WebSocket message carries one
 * whole 9P message. The only text message is the gateway's mark, which the
 * client acknowledges once it has read everything before it (offer
 * ACK_SUBPROTOCOL beside "9p": websocket.ts); any other is a protocol violation.
 */
export function clientOverWebSocket(ws: WebSocketLike): Client {
  ws.binaryType = "arraybuffer";
  const client = new Client({ send: (m) => ws.send(m), close: () => ws.close(1000, "client closed") });
  ws.addEventListener("message", (ev: { data: unknown }) => {
    if (ev.data instanceof ArrayBuffer) client.receive(new Uint8Array(ev.data));
    else if (ArrayBuffer.isView(ev.data)) {
      client.receive(new Uint8Array(ev.data.buffer, ev.data.byteOffset, ev.data.byteLength));
    } else if (typeof ev.data === "string" && parseMark(ev.data) !== null) {
      ws.send(ackText(parseMark(ev.data)!));
    } else {
      client.fail(new FramingError("server sent a text WebSocket message"));
      ws.close(1003, "9P messages are binary");
    }
  });
  ws.addEventListener("close", (ev: { code?: number; reason?: string }) =>
    client.fail(new Error(`WebSocket closed (${ev.code ?? "?"} ${ev.reason ?? ""})`.trim())),
  );
  ws.addEventListener("error", () => client.fail(new Error("WebSocket error")));
  return client;
}
