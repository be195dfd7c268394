// EDGE9P.log against real wrangler dev gateways: the share object's info
// lines (here: an msize lowered at Tversion, worker/session.ts) are printed
// at "info", the default, and not at "off".

import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ACK_SUBPROTOCOL, clientOverWebSocket } from "../../protocol/index.ts";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";

const MiB = 1 << 20;
const LOWERED = /session \S+: msize 67108864 lowered to \d+/;

let gw: LocalGateway | undefined;
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

/** Asks for a 64 MiB msize (past the 4 MiB cap) and gives the line a few seconds to arrive. */
async function askTooMuch(g: LocalGateway): Promise<void> {
  const ws = new WebSocket(g.wsUrl(), [ACK_SUBPROTOCOL, "9p"], { perMessageDeflate: false });
  await new Promise((r) => ws.once("open", r));
  const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  expect((await c.version(64 * MiB)).msize).toBe(4 * MiB);
  for (let i = 0; i < 50 && !LOWERED.test(g.output()); i++) await new Promise((r) => setTimeout(r, 100));
  ws.close();
}

describe("the log level", () => {
  it("prints the share object's info lines by default", async () => {
    gw = await startLocalGateway();
    await askTooMuch(gw);
    expect(gw.output()).toMatch(LOWERED);
  });

  it('prints none of them with log = "off"', async () => {
    gw = await startLocalGateway({ config: { log: "off" } });
    await askTooMuch(gw);
    expect(gw.output()).not.toMatch(LOWERED);
  });
});
