// The raw platform limit the benchmarks compare the gateway with: the same
// path (a WebSocket into a Durable Object, a range read from R2, the bytes
// back as one WebSocket message) with no 9P, no namespace and no sessions.
//
// A request is id[4] offset[8] length[4] (little-endian), then data for a put:
// - plain: read `length` bytes at `offset` of `bench/raw-target` (pinned by
//   etag); the reply is id[4] then the bytes, read from the R2 body straight
//   into the reply buffer (the same single copy the gateway makes into an Rread);
// - length | ECHO: answer that many bytes without touching R2;
// - length | PUT: R2 put of the data that follows the header at
//   `bench/raw-put/<offset>`; the reply is id[4];
// - length | PUT | ECHO: the same reply without touching R2 (the socket's
//   limit for messages the size of a Twrite).
// - length | PUT | SQL: the data that follows goes into a row of the
//   object's SQLite, so the reply waits on that write as a Tlcreate's or a
//   Twrite's does (the output gate); the reply is id[4].
//
// On a socket opened at a path ending in /9p-shaped, each message is instead
// a Tread as 9P frames it (size[4] type[1] tag[2] fid[4] offset[8] count[4])
// and the reply an Rread (size[4] type[1] tag[2] count[4] data): the same
// range read, framed so that it can go through `edge9p bridge` for clients
// that read the way diodcat does, still with no 9P state behind it.

import { DurableObject } from "cloudflare:workers";
import { CLOSE, PEER_CLOSE, SUBPROTOCOL } from "../../protocol/websocket.ts";

interface Env {
  DEV_BUCKET: R2Bucket;
  RAW: DurableObjectNamespace<RawObject>;
}

const KEY = "bench/raw-target";
const ECHO = 0x80000000;
const FRAMED = "9p-shaped";
const TREAD = 116;
const RREAD = 117;
const PUT = 0x40000000;
const SQL = 0x20000000;

export class RawObject extends DurableObject<Env> {
  private etag: string | null = null;
  private objectSize: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS put (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  }

  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    const framed = new URL(request.url).pathname.endsWith(`/${FRAMED}`);
    this.ctx.acceptWebSocket(pair[1], framed ? [FRAMED] : []);
    // `edge9p bridge` asks for the 9P subprotocol, as the gateway requires.
    const headers = framed ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : undefined;
    return new Response(null, { status: 101, webSocket: pair[0], headers });
  }

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    if (typeof message === "string") return;
    const framed = this.ctx.getTags(ws).includes(FRAMED);
    this.ctx.waitUntil(framed ? this.answerFramed(ws, message) : this.answer(ws, message));
  }

  private async answerFramed(ws: WebSocket, message: ArrayBuffer): Promise<void> {
    const v = new DataView(message);
    if (v.getUint8(4) !== TREAD) throw new Error(`9p-shaped: only Tread is answered, not type ${v.getUint8(4)}`);
    const tag = v.getUint16(5, true);
    const offset = Number(v.getBigUint64(11, true));
    const count = v.getUint32(19, true);
    const size = (await this.size()) ?? 0;
    const n = Math.max(0, Math.min(count, size - offset));
    const reply = new Uint8Array(11 + n);
    const r = new DataView(reply.buffer);
    r.setUint32(0, reply.byteLength, true);
    r.setUint8(4, RREAD);
    r.setUint16(5, tag, true);
    r.setUint32(7, n, true);
    if (n > 0) await this.readInto(reply, 11, offset, n);
    ws.send(reply);
  }

  private async size(): Promise<number | null> {
    if (this.objectSize === null) {
      const head = await this.env.DEV_BUCKET.head(KEY);
      this.etag = head!.etag;
      this.objectSize = head!.size;
    }
    return this.objectSize;
  }

  /** Reads `n` bytes at `offset` of the target straight into `into` at `at`. */
  private async readInto(into: Uint8Array, at: number, offset: number, n: number): Promise<void> {
    this.etag ??= (await this.env.DEV_BUCKET.head(KEY))!.etag;
    const obj = (await this.env.DEV_BUCKET.get(KEY, {
      range: { offset, length: n },
      onlyIf: { etagMatches: this.etag },
    })) as R2ObjectBody;
    const reader = obj.body.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      into.set(value, at);
      at += value.byteLength;
    }
  }

  private async answer(ws: WebSocket, message: ArrayBuffer): Promise<void> {
    const v = new DataView(message);
    const id = v.getUint32(0, true);
    const offset = Number(v.getBigUint64(4, true));
    const length = v.getUint32(12, true);
    if (length & PUT) {
      if (length & SQL) this.ctx.storage.sql.exec("INSERT INTO put (v) VALUES (?)", message.slice(16));
      else if (!(length & ECHO)) await this.env.DEV_BUCKET.put(`bench/raw-put/${offset}`, new Uint8Array(message, 16));
      const ack = new Uint8Array(4);
      new DataView(ack.buffer).setUint32(0, id, true);
      ws.send(ack);
      return;
    }
    const echo = (length & ECHO) !== 0;
    const n = length & ~(ECHO | PUT | SQL);
    const reply = new Uint8Array(4 + n);
    new DataView(reply.buffer).setUint32(0, id, true);
    if (!echo) await this.readInto(reply, 4, offset, n);
    ws.send(reply);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    const unsendable = code === PEER_CLOSE.NO_STATUS || code === PEER_CLOSE.ABNORMAL || code === PEER_CLOSE.TLS;
    ws.close(unsendable ? CLOSE.NORMAL : code, "bye");
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> | Response {
    if (request.headers.get("Upgrade") !== "websocket") return new Response("raw bench worker\n");
    return env.RAW.getByName("raw").fetch(request);
  },
} satisfies ExportedHandler<Env>;
