// edge9p bridge: 9P over TCP (or a unix socket) <-> 9P over WebSocket.
//
// Each accepted connection gets its own WebSocket, hence its own session at
// the gateway. The byte stream is split into whole messages (one WebSocket
// message each) and replies are written back as they come. Backpressure
// holds in both directions: the TCP side is paused while the WebSocket has
// too much unsent, and the WebSocket is paused while TCP cannot take more.

import net from "node:net";
import WebSocket from "ws";
import {
  FramingError,
  Framer,
  MESSAGES,
  ACK_SUBPROTOCOL,
  CLOSE,
  MSIZE_MAX_HEADER,
  MSIZE_REASON_HEADER,
  PEER_CLOSE,
  PLATFORM_MSIZE_CEILING,
  RESUME_HEADER,
  RESUME_WINDOW_HEADER,
  SECRET_HEADER,
  SESSION_HEADER,
  SUBPROTOCOL,
  LEASES_HEADER,
  ackText,
  decode,
  isLeaseText,
  nameOfId,
  parseMark,
  peekType,
} from "../protocol/index.ts";
import { Outstanding } from "./outstanding.ts";
import { delayLine, refusedRtt } from "./rtt.ts";
import { CachingSession, type CacheStats } from "./caching.ts";
import type { CacheBounds } from "./lease-cache.ts";

const TVERSION = MESSAGES.Tversion.id;
const RVERSION = MESSAGES.Rversion.id;

export interface BridgeOptions {
  /** Where to listen: host and port, or a unix socket path. */
  listen: { host: string; port: number } | { path: string };
  /** The share's 9P WebSocket URL (ws:// or wss://). */
  url: string;
  token?: string;
  /** Called with each line worth telling the user. */
  log?: (line: string) => void;
  /** Called with errors (also when quiet). */
  error?: (line: string) => void;
  /**
   * Development only: hold every message between guest and gateway half
   * this many ms each way, so that a request and its reply cost one round
   * trip of it (rtt.ts). Refused for a gateway that is not on this machine.
   */
  simulateRttMs?: number;
  /**
   * Ask the gateway for leases (docs/leases.md) and answer from them what it
   * can (bridge/caching.ts). Off by default for now.
   */
  cache?: boolean;
  /** The cache's bounds (lease-cache.ts's defaults otherwise). */
  cacheBounds?: CacheBounds;
}

export interface Bridge {
  /** The address actually bound (a port 0 request gets a real port). */
  readonly address: string;
  readonly port: number | null;
  /** 9P messages carried so far, all connections together: requests to the gateway, replies from it. */
  stats(): BridgeStats;
  close(): Promise<void>;
}

export interface BridgeStats extends CacheStats {
  /** Requests that crossed to the gateway (the guest's and the bridge's own). */
  requests: number;
  /** The same, by request type. */
  crossed: Record<string, number>;
  replies: number;
}

/** Stop reading TCP when this much waits to go out on the WebSocket. */
const HIGH_WATER = 16 << 20;
/** While reconnecting, stop reading the guest once this many requests wait. */
const PAUSE_WHILE_AWAY = 256;
/** ws's receive cap must admit the largest reply: msize can reach the platform ceiling. */
const MAX_PAYLOAD = PLATFORM_MSIZE_CEILING + 4096;

export function startBridge(opts: BridgeOptions): Promise<Bridge> {
  const refused = refusedRtt(opts.url, opts.simulateRttMs ?? 0);
  if (refused) return Promise.reject(new Error(refused));
  const log = opts.log ?? (() => {});
  const error = opts.error ?? log;
  let nextConn = 1;
  /** Teardown functions of the open connections. */
  const conns = new Set<() => void>();
  const counts: BridgeStats = { requests: 0, crossed: {}, replies: 0, answered: {}, made: 0, released: 0, held: 0 };
  /** The open connections' caches (with --cache), for the leases held now. */
  const caches = new Set<CachingSession>();

  const server = net.createServer((sock) => {
    const stop: () => void = connect(sock, nextConn++, opts, log, error, () => conns.delete(stop), counts, caches);
    conns.add(stop);
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const onListening = () => {
      server.off("error", reject);
      server.on("error", (e) => error(`bridge: ${e.message}`));
      const a = server.address();
      const address = typeof a === "string" ? a : a ? `${a.address}:${a.port}` : "?";
      resolve({
        address,
        port: typeof a === "object" && a ? a.port : null,
        stats: () => {
          let held = 0;
          for (const c of caches) held += c.cache.size.leases;
          return { ...counts, crossed: { ...counts.crossed }, answered: { ...counts.answered }, held };
        },
        close: () =>
          new Promise<void>((done) => {
            for (const c of [...conns]) c();
            server.close(() => done());
          }),
      });
    };
    if ("path" in opts.listen) server.listen(opts.listen.path, onListening);
    else server.listen(opts.listen.port, opts.listen.host, onListening);
  });
}

/** Close codes after which the bridge resumes the session (the others end it). */
const RESUMABLE_CLOSES = new Set<number>([
  PEER_CLOSE.GOING_AWAY,
  PEER_CLOSE.NO_STATUS,
  PEER_CLOSE.ABNORMAL,
  CLOSE.INTERNAL,
  PEER_CLOSE.SERVICE_RESTART,
  PEER_CLOSE.TRY_AGAIN_LATER,
  PEER_CLOSE.BAD_GATEWAY,
  CLOSE.DRAIN,
  CLOSE.NOT_READING,
]);
/** Reconnect delays grow to this (ms); the gateway's resume window bounds the total. */
const MAX_BACKOFF_MS = 5000;

/**
 * Bridges one TCP connection; returns a function that tears it down. The
 * session is resumable (protocol/resume.ts): when its WebSocket drops, the
 * TCP connection stays, the bridge reconnects with backoff and replays every
 * request that had no reply, so the guest sees a stall, not an error.
 */
function connect(
  sock: net.Socket,
  id: number,
  opts: BridgeOptions,
  log: (l: string) => void,
  error: (l: string) => void,
  gone: () => void,
  counts: BridgeStats,
  caches: Set<CachingSession>,
): () => void {
  const tag = `[${id}]`;
  // Each way, half the simulated round trip (0: at once).
  const wan = delayLine((opts.simulateRttMs ?? 0) / 2);
  sock.setNoDelay(true);
  sock.pause();
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  const pending = new Outstanding();
  let ws: WebSocket | null = null;
  let session: { sid: string; secret: string; windowMs: number } | null = null;
  let asked: number | null = null;
  let ceilingReason = "";
  let done = false;
  /** While reconnecting: when the socket dropped, and attempts so far. */
  let lost: { at: number; attempts: number; why: string } | null = null;
  let retry: NodeJS.Timeout | null = null;
  /** With --cache: what answers the guest from leases (null: every request crosses, as before). */
  const caching = opts.cache
    ? new CachingSession(
        {
          forward,
          toGuest: (m) => !done && sock.write(m),
          sendText: (t) => {
            const w = ws;
            if (w) wan.later(() => ws === w && w.readyState === WebSocket.OPEN && w.send(t));
          },
        },
        counts,
        opts.cacheBounds,
      )
    : null;
  if (caching) caches.add(caching);

  const teardown = (why: string | null) => {
    if (done) return;
    done = true;
    if (retry) clearTimeout(retry);
    caching?.close();
    if (caching) caches.delete(caching);
    if (why) error(`${tag} ${why}`);
    sock.destroy();
    const w = ws;
    ws = null;
    if (w && (w.readyState === WebSocket.OPEN || w.readyState === WebSocket.CONNECTING)) w.close(CLOSE.NORMAL, "bridge closed");
    gone();
  };

  /** The socket dropped (or a resume attempt failed): try again, or give up past the window. */
  const reconnect = (why: string) => {
    if (done || !session) return;
    lost ??= { at: Date.now(), attempts: 0, why };
    const elapsed = Date.now() - lost.at;
    if (elapsed > session.windowMs) {
      return teardown(
        `lost: session ${session.sid} could not be resumed within the gateway's ${session.windowMs / 1000} s window (${lost.why}); the guest's mount gets errors from now on`,
      );
    }
    const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** lost.attempts);
    lost.attempts++;
    log(`${tag} reconnecting (attempt ${lost.attempts}, in ${delay} ms): ${why}`);
    retry = setTimeout(() => {
      retry = null;
      open(true);
    }, delay);
  };

  function open(resuming: boolean) {
    const headers: Record<string, string> = {};
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    headers[RESUME_HEADER] = resuming && session ? `${session.sid}.${session.secret}` : "new";
    if (caching) headers[LEASES_HEADER] = "1";
    /** The lease term the gateway answered (docs/leases.md: no answer, no cache). */
    let term: number | null = null;
    // permessage-deflate off: workerd would negotiate it, and 9P payloads are
    // mostly file bytes where it costs CPU for nothing (platform facts).
    // 9p.ack: the bridge acknowledges what it read, so the gateway knows what
    // is still on the way (protocol/websocket.ts). A guest that stops reading
    // pauses the WebSocket (below), which stops the acks and so the replies.
    const w = new WebSocket(opts.url, [ACK_SUBPROTOCOL, SUBPROTOCOL], { perMessageDeflate: false, headers, maxPayload: MAX_PAYLOAD });
    ws = w;
    /** Handles this socket's end once, whichever event reports it. */
    let ended = false;
    /** A resume the gateway took (it names the session); a refused one is closed right away. */
    let taken = false;
    const ended1 = (code: number, why: string, retriable: boolean) => {
      if (ended || w !== ws || done) return;
      ended = true;
      ws = null;
      // Rule 5: a socket's leases go with it; the resume starts with none.
      caching?.lost();
      if (retriable && session) return reconnect(why);
      teardown(why || null);
    };

    w.on("upgrade", (res) => {
      const max = res.headers[MSIZE_MAX_HEADER.toLowerCase()];
      const why = res.headers[MSIZE_REASON_HEADER.toLowerCase()];
      if (max) ceilingReason = `the gateway allows at most ${max}${why ? ` (${why})` : ""}`;
      const sid = res.headers[SESSION_HEADER.toLowerCase()];
      const secret = res.headers[SECRET_HEADER.toLowerCase()];
      const windowMs = Number(res.headers[RESUME_WINDOW_HEADER.toLowerCase()] ?? 0);
      if (!resuming && typeof sid === "string" && typeof secret === "string") session = { sid, secret, windowMs };
      taken = resuming && sid === session?.sid;
      const t = Number(res.headers[LEASES_HEADER.toLowerCase()]);
      term = Number.isFinite(t) && t > 0 ? t : null;
    });
    w.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        // While resuming, a gateway that is restarting answers 5xx for a moment.
        ended1(0, `gateway refused the WebSocket: HTTP ${status} ${body.trim()}`, resuming && (status >= 500 || status === 429));
        w.terminate();
      });
    });
    w.on("open", () => {
      if (w !== ws || done) return;
      if (resuming && !taken) return; // the close with the reason follows
      caching?.opened(term);
      if (resuming && lost) {
        const { hello, messages } = pending.replay();
        w.send(JSON.stringify(hello));
        for (const m of messages) w.send(m, { binary: true });
        const secs = ((Date.now() - lost.at) / 1000).toFixed(1);
        log(`${tag} resumed session ${session!.sid} after ${secs} s (${lost.attempts} attempts); replayed ${hello.replay} requests`);
        lost = null;
      } else {
        const leases = !caching ? "" : term === null ? "; the gateway grants no leases, so nothing is cached" : `; leases for ${term} ms`;
        log(`${tag} connected to ${opts.url}${session ? ` (session ${session.sid}, resumable)` : ""}${leases}`);
      }
      sock.resume();
    });
    w.on("message", (data, isBinary) => {
      if (w !== ws) return;
      if (!isBinary) {
        const text = data.toString();
        // Applied when it reaches the bridge's side of the simulated distance, in order with the replies (rule 3).
        if (caching && isLeaseText(text)) return wan.later(() => ws === w && !caching.text(text) && teardown("gateway sent a lease message that does not parse"));
        const nonce = parseMark(text);
        if (nonce === null) return teardown("gateway sent a text message that is not a mark; 9P messages are binary");
        // The acknowledgement travels as far as the reply did.
        return wan.later(() => ws === w && w.readyState === WebSocket.OPEN && w.send(ackText(nonce)));
      }
      const msg = data as Buffer;
      // A reply nothing waits for is a duplicate from before a resume: the
      // guest may have reused its tag already, so it must not see it.
      if (!pending.answered(msg)) return;
      counts.replies++;
      if (asked !== null) noteVersion(msg);
      wan.later(() => {
        if (done) return;
        if (caching && !caching.reply(msg)) return;
        if (!sock.write(msg)) {
          w.pause();
          sock.once("drain", () => w.resume());
        }
      });
    });
    w.on("close", (code, reason) => {
      const r = reason.toString();
      if (code === CLOSE.RESUME_REFUSED) return ended1(code, `lost: ${r}; the guest's mount gets errors from now on`, false);
      const msg = code === CLOSE.NORMAL ? "" : `gateway closed the session: ${code} ${r}`.trim();
      ended1(code, msg, RESUMABLE_CLOSES.has(code));
    });
    w.on("error", (e) => ended1(0, `WebSocket error: ${e.message}`, resuming));
  }

  open(false);

  sock.on("data", (chunk: Buffer) => {
    try {
      framer.push(chunk, (m) => (caching ? caching.request(m) : forward(m)));
    } catch (e) {
      if (e instanceof FramingError) return teardown(`client sent a broken stream: ${e.message}`);
      throw e;
    }
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      // Reconnecting: hold the guest back once a few requests wait.
      if (pending.size >= PAUSE_WHILE_AWAY) sock.pause();
    } else if (ws.bufferedAmount > HIGH_WATER) sock.pause();
  });
  sock.on("end", () => teardown(null));
  sock.on("error", (e) => teardown(`client connection: ${e.message}`));

  /** Sends a request to the gateway, kept until answered for a resume's replay. */
  function forward(m: Uint8Array) {
    if (peekType(m) === TVERSION) noteRequest(m);
    pending.sent(m);
    counts.requests++;
    const type = nameOfId(m[4]!);
    counts.crossed[type] = (counts.crossed[type] ?? 0) + 1;
    const w = ws;
    // While reconnecting the request waits in `pending`: the resume replays it.
    if (!w || w.readyState !== WebSocket.OPEN) return;
    // Delayed (simulated distance): sent only on the socket it was meant
    // for; if that one went meanwhile, the resume's replay sends it.
    wan.later(() => {
      if (ws !== w || w.readyState !== WebSocket.OPEN) return;
      w.send(m, { binary: true }, () => {
        if (sock.isPaused() && w.bufferedAmount < HIGH_WATER / 2 && !done && ws === w) sock.resume();
      });
    });
  }

  /** Remembers the msize a Tversion asks for. */
  function noteRequest(m: Uint8Array) {
    try {
      const t = decode(m, "9P2000.L");
      if (t.type === "Tversion") asked = t.msize;
    } catch {
      // Not ours to judge: the gateway answers malformed messages.
    }
  }

  /** Reports the negotiated msize (and why it is lower), and frames by it. */
  function noteVersion(m: Uint8Array) {
    if (peekType(m) !== RVERSION) return;
    try {
      const r = decode(m, "9P2000.L");
      if (r.type !== "Rversion") return;
      const version = new TextDecoder().decode(r.version);
      if (version === "unknown") {
        error(`${tag} the gateway does not speak the version the client asked for`);
      } else {
        framer.setMaxSize(r.msize);
        const lower = asked !== null && r.msize < asked ? `, lower than the ${asked} asked: ${ceilingReason || "the gateway's limit"}` : "";
        log(`${tag} ${version}, msize ${r.msize}${lower}`);
      }
      asked = null;
    } catch {
      // ignore
    }
  }

  return () => teardown(null);
}
