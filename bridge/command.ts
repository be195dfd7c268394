// `edge9p bridge [options] URL`: parses the command line and runs the bridge
// until interrupted.

import { parseArgs } from "node:util";
import { startBridge } from "./bridge.ts";
import { refusedRtt } from "./rtt.ts";

export const BRIDGE_USAGE = `usage: edge9p bridge [options] URL

Accepts 9P over TCP (or a unix socket) and carries each connection over its
own WebSocket to an edge9p share, e.g. ws://127.0.0.1:8787/v1/shares/dev/9p

options:
  --listen HOST:PORT   where to listen (default 127.0.0.1:5640)
  --unix PATH          listen on a unix socket instead
  --token TOKEN        bearer token for the share (default: $EDGE9P_TOKEN)
  --quiet              print errors only
  --simulate-rtt MS    development only: hold every message MS/2 each way,
                       as a gateway MS away would (refused unless the URL's
                       host is this machine)
  --cache              ask the gateway for leases and answer what they cover
                       here (attributes, walks, clunks, listings:
                       docs/leases.md);
                       off by default for now

then, in a guest VM (QEMU user networking reaches the host as 10.0.2.2):
  mount -t 9p -o trans=tcp,port=5640,version=9p2000.L,msize=1048576 10.0.2.2 /mnt
`;

function parseListen(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v) ?? /^()()(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] || m[2] || "127.0.0.1", port };
}

export async function bridgeCommand(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        listen: { type: "string" },
        unix: { type: "string" },
        token: { type: "string" },
        quiet: { type: "boolean", default: false },
        "simulate-rtt": { type: "string" },
        cache: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`edge9p bridge: ${(e as Error).message}\n${BRIDGE_USAGE}`);
    return 2;
  }
  const { values, positionals } = args;
  if (values.help) {
    process.stdout.write(BRIDGE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`edge9p bridge: give exactly one share URL\n${BRIDGE_USAGE}`);
    return 2;
  }
  const url = positionals[0]!;
  if (!/^wss?:\/\//.test(url)) {
    process.stderr.write(`edge9p bridge: the URL must start with ws:// or wss:// (got ${url})\n`);
    return 2;
  }
  const listen = values.unix ? { path: values.unix } : parseListen(values.listen ?? "127.0.0.1:5640");
  if (!listen) {
    process.stderr.write(`edge9p bridge: --listen wants HOST:PORT (got ${values.listen})\n`);
    return 2;
  }
  const rtt = values["simulate-rtt"] === undefined ? 0 : Number(values["simulate-rtt"]);
  const refused = refusedRtt(url, rtt);
  if (refused) {
    process.stderr.write(`edge9p bridge: ${refused}\n`);
    return 2;
  }
  const out = (l: string) => process.stdout.write(`${l}\n`);
  const err = (l: string) => process.stderr.write(`${l}\n`);
  let bridge;
  try {
    bridge = await startBridge({
      listen,
      url,
      token: values.token ?? process.env.EDGE9P_TOKEN,
      log: values.quiet ? () => {} : out,
      error: err,
      simulateRttMs: rtt,
      cache: values.cache,
    });
  } catch (e) {
    err(`edge9p bridge: cannot listen on ${values.unix ?? values.listen ?? "127.0.0.1:5640"}: ${(e as Error).message}`);
    return 1;
  }
  if (!values.quiet) {
    out(`edge9p bridge: ${bridge.address} -> ${url}${rtt ? ` (simulating a ${rtt} ms round trip)` : ""}${values.cache ? " (with the lease cache)" : ""}`);
    if (bridge.port !== null) {
      out(`mount in a guest: mount -t 9p -o trans=tcp,port=${bridge.port},version=9p2000.L,msize=1048576 10.0.2.2 /mnt`);
    }
  }
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve());
  });
  await bridge.close();
  return 0;
}
