// The protocol client over a TCP connection (to the bridge), framing the
// byte stream as the Linux client does.

import net from "node:net";
import { Client, Framer, PLATFORM_MSIZE_CEILING } from "../../protocol/index.ts";

export async function tcpClient(port: number, host = "127.0.0.1"): Promise<{ client: Client; socket: net.Socket }> {
  const socket = net.connect(port, host);
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const client = new Client({ send: (m) => socket.write(m), close: () => socket.end() });
  const framer = new Framer(PLATFORM_MSIZE_CEILING);
  socket.on("data", (chunk: Buffer) => framer.push(chunk, (m) => client.receive(m)));
  socket.on("close", () => client.fail(new Error("connection closed")));
  socket.on("error", (e) => client.fail(e));
  return { client, socket };
}
