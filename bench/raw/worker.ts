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
//   `bench/raw-put/<offset>`; the reply is id[4].

import { DurableObject } from "cloudflare:workers";

interface Env {
  DEV_BUCKET: R2Bucket;
  RAW: DurableObjectNamespace<RawObject>;
}

const KEY = "bench/raw-target";
const ECHO = 0x80000000;
const PUT = 0x40000000;

export class RawObject extends DurableObject<Env> {
  private etag: string | null = null;

  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, message: ArrayBuffer | string): Promise<void> {
    if (typeof message === "string") return;
    this.ctx.waitUntil(this.answer(ws, message));
  }

  private async answer(ws: WebSocket, message: ArrayBuffer): Promise<void> {
    const v = new DataView(message);
    const id = v.getUint32(0, true);
    const offset = Number(v.getBigUint64(4, true));
    const length = v.getUint32(12, true);
    if (length & PUT) {
      await this.env.DEV_BUCKET.put(`bench/raw-put/${offset}`, new Uint8Array(message, 16));
      const ack = new Uint8Array(4);
      new DataView(ack.buffer).setUint32(0, id, true);
      ws.send(ack);
      return;
    }
    const echo = (length & ECHO) !== 0;
    const n = length & ~(ECHO | PUT);
    const reply = new Uint8Array(4 + n);
    new DataView(reply.buffer).setUint32(0, id, true);
    if (!echo) {
      this.etag ??= (await this.env.DEV_BUCKET.head(KEY))!.etag;
      const obj = (await this.env.DEV_BUCKET.get(KEY, {
        range: { offset, length: n },
        onlyIf: { etagMatches: this.etag },
      })) as R2ObjectBody;
      const reader = obj.body.getReader();
      let at = 4;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        reply.set(value, at);
        at += value.byteLength;
      }
    }
    ws.send(reply);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    ws.close(code === 1005 || code === 1006 || code === 1015 ? 1000 : code, "bye");
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> | Response {
    if (request.headers.get("Upgrade") !== "websocket") return new Response("raw bench worker\n");
    return env.RAW.getByName("raw").fetch(request);
  },
} satisfies ExportedHandler<Env>;
