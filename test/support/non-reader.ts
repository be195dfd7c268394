// A client that stops reading: it opens a file, pauses its socket (so its
// kernel buffers fill and then whatever the gateway queues would grow), and
// pipelines Treads on tags it never uses again. For the tests and the
// benchmark of what such a client can make the gateway hold.

import WebSocket from "ws";
import { NOFID, NOTAG, encode } from "../../protocol/index.ts";

const L = "9P2000.L";

export interface NonReaderOptions {
  /** Subprotocols to offer: ["9p"] for plain 9P, ["9p.ack", "9p"] to be asked for acks (never sent). */
  protocols: string[];
  /** The file to read, as walk names from the share's root. */
  path: string[];
  fileBytes: number;
  msize: number;
  /** Bytes each Tread asks for. */
  count: number;
  reads: number;
}

export async function nonReader(wsUrl: string, o: NonReaderOptions): Promise<WebSocket> {
  const ws = new WebSocket(wsUrl, o.protocols, { perMessageDeflate: false, maxPayload: o.msize + 4096 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const reply = () => new Promise<void>((resolve) => ws.once("message", () => resolve()));
  for (const m of [
    { type: "Tversion", tag: NOTAG, msize: o.msize, version: L },
    { type: "Tattach", tag: 0, fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 },
    { type: "Twalk", tag: 1, fid: 0, newfid: 1, wnames: o.path },
    { type: "Tlopen", tag: 1, fid: 1, flags: 0 },
  ] as const) {
    const got = reply();
    ws.send(encode(m as Parameters<typeof encode>[0], L));
    await got;
  }
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  for (let i = 0; i < o.reads; i++) {
    const offset = (i * o.count) % Math.max(1, o.fileBytes - o.count);
    ws.send(encode({ type: "Tread", tag: 100 + i, fid: 1, offset: BigInt(offset), count: o.count }, L));
  }
  return ws;
}
