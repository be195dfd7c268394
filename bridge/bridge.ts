// edge9p bridge: 9P over TCP (or a unix socket) <-> 9P over WebSocket.
//
// Each accepted connection gets its own WebSocket, hence its own session at
// the gateway. The byte stream is split into whole messages (one WebSocket
// message each) and replies are written back as they come. Backpressure
// holds in both directions: the TCP side is paused while the WebSocket has
// too much unsent, and the WebSocket is paused while TCP cannot take more.

import net from "node:net";
import WebSocket from "ws";
import { FramingError, Framer, MESSAGES, PLATFORM_MSIZE_CEILING, decode, peekType } from "../protocol/index.ts";

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
}

export interface Bridge {
  /** The address actually bound (a port 0 request gets a real port). */
  readonly address: string;
  readonly port: number | null;
  close(): Promise<void>;
}

/** Stop reading TCP when this much waits to go out on the WebSocket. */
const HIGH_WATER = 16 << 20;
/** ws's receive cap must admit the largest reply: msize can reach the platform ceiling. */
const MAX_PAYLOAD = PLATFORM_MSIZE_CEILING + 4096;

export function startBridge(opts: BridgeOptions): Promise<Bridge> {
  const log = opts.log ?? (() => {});
  const error = opts.error ?? log;
  let nextConn = 1;
  /** Teardown functions of the open connections. */
  const conns = new Set<() => void>();

  const server = net.createServer((sock) => {
    const stop: () => void = connect(sock, nextConn++, opts, log, error, () => conns.delete(stop));
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

/** Bridges one TCP connection; returns a function that tears it down. */
function connect(
  sock: net.Socket,
  id: number,
  opts: BridgeOptions,
  log: (l: string) => void,
  error: (l: string) => void,
  gone: () => void,
): () => void {
  const tag = `[${id}]`;
  sock.setNoDelay(true);
  sock.pause();
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  // permessage-deflate off: workerd would negotiate it, and 9P payloads are
  // mostly file bytes where it costs CPU for nothing (platform facts).
  const ws = new WebSocket(opts.url, ["9p"], { perMessageDeflate: false, headers, maxPayload: MAX_PAYLOAD });
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  let asked: number | null = null;
  let ceilingReason = "";
  let done = false;

  const teardown = (why: string | null) => {
    if (done) return;
    done = true;
    if (why) error(`${tag} ${why}`);
    sock.destroy();
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000, "bridge closed");
    gone();
  };

  ws.on("upgrade", (res) => {
    const max = res.headers["x-edge9p-msize-max"];
    const why = res.headers["x-edge9p-msize-reason"];
    if (max) ceilingReason = `the gateway allows at most ${max}${why ? ` (${why})` : ""}`;
  });
  ws.on("unexpected-response", (_req, res) => {
    let body = "";
    res.on("data", (c: Buffer) => (body += c.toString()));
    res.on("end", () => teardown(`gateway refused the WebSocket: HTTP ${res.statusCode} ${body.trim()}`));
  });
  ws.on("open", () => {
    log(`${tag} connected to ${opts.url}`);
    sock.resume();
  });
  ws.on("message", (data, isBinary) => {
    if (!isBinary) return teardown("gateway sent a text message; 9P messages are binary");
    const msg = data as Buffer;
    if (asked !== null) noteVersion(msg);
    if (!sock.write(msg)) {
      ws.pause();
      sock.once("drain", () => ws.resume());
    }
  });
  ws.on("close", (code, reason) => {
    if (done) return;
    teardown(code === 1000 ? null : `gateway closed the session: ${code} ${reason.toString()}`.trim());
  });
  ws.on("error", (e) => teardown(`WebSocket error: ${e.message}`));

  sock.on("data", (chunk: Buffer) => {
    try {
      framer.push(chunk, (m) => {
        if (peekType(m) === TVERSION) noteRequest(m);
        ws.send(m, { binary: true }, () => {
          if (sock.isPaused() && ws.bufferedAmount < HIGH_WATER / 2 && !done) sock.resume();
        });
      });
    } catch (e) {
      if (e instanceof FramingError) return teardown(`client sent a broken stream: ${e.message}`);
      throw e;
    }
    if (ws.bufferedAmount > HIGH_WATER) sock.pause();
  });
  sock.on("end", () => teardown(null));
  sock.on("error", (e) => teardown(`client connection: ${e.message}`));

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
