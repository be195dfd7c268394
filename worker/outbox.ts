// What one socket has been sent and not yet shown to have read: the bound on
// what a client that stops reading can make the gateway hold.
//
// workerd gives a Durable Object no view of a socket's send queue: `send`
// copies the bytes into a queue that a pump writes out as the peer reads
// (api/web-socket.c++), with no bufferedAmount and no limit, and closing the
// socket only queues a close frame behind them (measured: 256 MiB queued for
// a client that paused its socket stayed in workerd's memory after close,
// until the client's connection went). So a reply counts as held from when
// it is sent until the client has shown that it read it:
// - a client of the "9p.ack" subprotocol acknowledges marks
//   (protocol/websocket.ts): an ack confirms everything sent before its mark;
// - a plain 9P client uses a tag again, which it may do only once the tag's
//   reply arrived: that confirms everything sent up to that reply. A client
//   that breaks this rule defeats the bound, which is why a share can refuse
//   plain clients (EDGE9P.shares.NAME.plain_9p).
// Replies that may be large (Tread, Treaddir) wait for room in the window
// before they are built; small ones go out and count. A socket past its
// window by more than UNREAD_SLACK, or whose waiting requests see no
// confirmation for the stall time, is closed (4006): what it left unread
// stays charged until the socket is really gone.

import { markText } from "../protocol/index.ts";
import type { ByteBudget } from "./budget.ts";

/** Small replies a socket may leave unread past its window before it is cut. */
export const UNREAD_SLACK = 1 << 20;

export interface OutboxOptions {
  /** Bytes a socket may leave unread (EDGE9P.session_window_bytes). */
  window: number;
  /** How long requests may wait for room with no confirmation before the socket is cut (ms). */
  stallMs: number;
  /** Whether the client acknowledges marks ("9p.ack"); otherwise tag reuse confirms. */
  acks: boolean;
}

export interface OutboxIo {
  send(message: Uint8Array | string): void;
  /** The client does not read: end its session and close the socket (4006). */
  cut(reason: string): void;
}

/** Room a request took for its reply: given back once the reply is read, or at once if none is sent. */
export interface Ticket {
  readonly n: number;
  readonly give: () => void;
}

interface Waiter {
  n: number;
  go: () => void;
  fail: (e: unknown) => void;
}

export class Outbox {
  /** Bytes sent on this socket. */
  private sent = 0;
  /** Of them, the bytes the client has shown it read. */
  private confirmed = 0;
  /** Room taken by requests whose replies are being built. */
  private reserved = 0;
  /** Budget holds of sent replies, by the stream offset where their reply ends. */
  private readonly holds: { at: number; n: number; give: () => void }[] = [];
  /** The room the unread replies of `holds` took. */
  private heldRoom = 0;
  /** Marks sent and not yet acknowledged, oldest first. */
  private readonly marks: { nonce: string; at: number }[] = [];
  private markedAt = 0;
  /** Plain 9P: where the last reply on each tag ends in the stream. */
  private readonly tagEnds = new Map<number, number>();
  private readonly waiting: Waiter[] = [];
  private progressAt = Date.now();
  private stallTimer: ReturnType<typeof setTimeout> | null = null;
  private gone = false;

  constructor(
    private readonly io: OutboxIo,
    private readonly budget: ByteBudget,
    private readonly o: OutboxOptions,
  ) {}

  /** Bytes sent and not known to be read. */
  get unread(): number {
    return this.sent - this.confirmed;
  }

  /**
   * Waits for room for a reply of up to `n` bytes in this socket's window,
   * then in the share's budget. Aborting `signal` gives up.
   */
  async reserve(n: number, signal: AbortSignal): Promise<Ticket> {
    if (signal.aborted) throw signal.reason;
    // Either way the room is reserved when this goes on (wake() reserves it).
    if (this.fits(n)) this.reserved += n;
    else await this.wait(n, signal);
    let give: () => void;
    try {
      give = await this.budget.acquire(n, signal);
    } catch (e) {
      this.reserved -= n;
      this.wake();
      throw e;
    }
    let given = false;
    return {
      n,
      give: () => {
        if (given) return;
        given = true;
        give();
      },
    };
  }

  /** A ticket whose reply was not sent (an error, a flush): its room is free again. */
  unused(t: Ticket): void {
    this.reserved -= t.n;
    t.give();
    this.wake();
  }

  /** Sends a reply on `tag`; the tickets taken for it stay held until it is read. */
  send(tag: number, bytes: Uint8Array, tickets: readonly Ticket[] = []): void {
    if (this.gone) {
      for (const t of tickets) this.unused(t);
      return;
    }
    this.io.send(bytes);
    this.sent += bytes.byteLength;
    for (const t of tickets) {
      this.reserved -= t.n;
      this.holds.push({ at: this.sent, n: t.n, give: t.give });
      this.heldRoom += t.n;
    }
    if (this.o.acks) {
      if (this.sent - this.markedAt >= this.o.window / 4) this.mark();
    } else {
      this.tagEnds.set(tag, this.sent);
    }
    // A reply larger than the window went alone: small ones may follow it by the slack.
    if (this.unread > Math.max(this.o.window, this.heldRoom) + UNREAD_SLACK) {
      this.io.cut(`${this.unread} bytes of replies unread, past the session's window of ${this.o.window} (EDGE9P.session_window_bytes)`);
    }
  }

  /** A plain 9P client sent a message on `tag`: it read the tag's last reply. */
  received(tag: number): void {
    if (this.o.acks) return;
    const end = this.tagEnds.get(tag);
    if (end === undefined) return;
    this.tagEnds.delete(tag);
    this.confirm(end);
  }

  /** An ack: true when it answers a mark of this socket. */
  ack(nonce: string): boolean {
    const i = this.marks.findIndex((m) => m.nonce === nonce);
    if (i < 0) return false;
    const at = this.marks[i]!.at;
    this.marks.splice(0, i + 1);
    this.confirm(at);
    return true;
  }

  /**
   * The gateway closed the socket: nothing more goes on it, and its holds
   * are given back so the share's other sessions keep their budget. What it
   * left unread may still sit in workerd's queue until its peer goes: the
   * share object counts it (`stranded`) and refuses new sessions while too
   * much is stranded.
   */
  strand(): void {
    if (this.gone) return;
    this.stranded = this.unread;
    this.closed();
  }

  /** Unread bytes left on the socket when the gateway closed it. */
  stranded = 0;

  /** The socket is gone: everything it held is free (its queue went with it). */
  closed(): void {
    if (this.gone) return;
    this.gone = true;
    this.confirm(this.sent);
    for (const w of this.waiting.splice(0)) w.fail(new Error("the socket closed"));
    this.clearStall();
  }

  private fits(n: number): boolean {
    const held = this.unread + this.reserved;
    // A reply larger than the window still goes, alone.
    return (held === 0 || held + n <= this.o.window) && this.waiting.length === 0;
  }

  private wait(n: number, signal: AbortSignal): Promise<void> {
    // Let the client confirm everything sent so far.
    if (this.o.acks && this.sent > this.markedAt) this.mark();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        n,
        go: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        fail: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason);
        this.wake();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(w);
      this.armStall();
    });
  }

  private mark(): void {
    const nonce = [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
    this.markedAt = this.sent;
    this.marks.push({ nonce, at: this.sent });
    this.io.send(markText(nonce));
  }

  private confirm(upTo: number): void {
    if (upTo <= this.confirmed) return;
    this.confirmed = Math.min(upTo, this.sent);
    this.progressAt = Date.now();
    while (this.holds.length > 0 && this.holds[0]!.at <= this.confirmed) {
      const h = this.holds.shift()!;
      this.heldRoom -= h.n;
      h.give();
    }
    this.wake();
  }

  private wake(): void {
    while (this.waiting.length > 0) {
      const w = this.waiting[0]!;
      const held = this.unread + this.reserved;
      if (held !== 0 && held + w.n > this.o.window) break;
      this.waiting.shift();
      // Reserved here, so that the next waiter and any new request see it taken.
      this.reserved += w.n;
      w.go();
    }
    if (this.waiting.length === 0) this.clearStall();
  }

  private armStall(): void {
    if (this.stallTimer !== null) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      if (this.waiting.length === 0 || this.gone) return;
      const quiet = Date.now() - this.progressAt;
      if (quiet >= this.o.stallMs) {
        this.io.cut(`replies unread for ${(quiet / 1000).toFixed(1)} s: ${this.unread} bytes wait for the client to read them`);
      } else {
        this.armStall();
      }
    }, Math.max(1, this.o.stallMs - (Date.now() - this.progressAt)));
  }

  private clearStall(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }
}
