// The real Linux 9p client keeps its mount while the gateway process is
// killed and started again twice, as a deploy does: edge9p bridge holds the
// guest's TCP connection, resumes the session and replays what had no
// reply. The guest runs a loop of writes, renames and reads, then the same
// loop on tmpfs, and the two trees must hash the same.

import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { NOFID, clientOverWebSocket } from "../../protocol/index.ts";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";
import { runGuest, setupGuest } from "./support.ts";

let gw: LocalGateway;
let bridge: Bridge;
const bridgeLog: string[] = [];
let attempt = 0;

beforeAll(async () => {
  await setupGuest();
  gw = await startLocalGateway();
  bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), log: (l) => bridgeLog.push(l) });
}, 900_000);

afterAll(async () => {
  await bridge?.close();
  await gw?.stop();
});

/** Creates an empty file at the share's root over 9P (seen by the guest at once). */
async function touch(name: string): Promise<void> {
  const ws = new WebSocket(gw.wsUrl("dev"), ["9p"]);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await c.version(65536);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  await c.request({ type: "Twalk", fid: 0, newfid: 1, wnames: [] });
  await c.request({ type: "Tlcreate", fid: 1, name: new TextEncoder().encode(name), flags: 1, mode: 0o100644, gid: 0 });
  await c.request({ type: "Tclunk", fid: 1 });
  ws.close();
}

const waitFor = async (what: () => boolean, ms: number, label: string) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${label}\n${bridgeLog.join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

describe("Linux guest, through edge9p bridge, across gateway restarts", () => {
  // On a mismatch the differing files are printed first. (1 run in about 8
  // once ended with an extra KEY.conflict-ETAG file: a publish cut by the
  // kill after its object landed; test/workerd/landed.test.ts.)
  it("a loop of writes, renames and reads completes while the gateway is killed and started twice", { timeout: 900_000 }, async () => {
    // One round: write a file through a temporary name and rename it into
    // place, read it back, every third round rename an older one; each
    // round's time goes to a log, for the stalls. Names carry a run number,
    // so a rerun by hand (vitest --retry) on the same gateway starts clean.
    const n = ++attempt;
    const before = bridgeLog.length;
    const resumes = () => bridgeLog.slice(before).filter((l) => l.includes("resumed session"));
    const script = `
set -e
round() { d=$1; i=$2
  yes "edge9p round $i" | head -c $((20000 + i * 997)) > $d/f$i.tmp
  mv $d/f$i.tmp $d/f$i
  cat $d/f$i > /dev/null
  if [ $((i % 3)) = 0 ]; then mv $d/f$((i - 1)) $d/g$i; fi
}
mkdir /mnt/loop${n} /tmp/loop
i=0
while [ ! -e /mnt/stop${n} ] && [ $i -lt 5000 ]; do
  i=$((i + 1)); round /mnt/loop${n} $i; cut -d" " -f1 /proc/uptime >> /tmp/ticks
done
echo "ROUNDS $i"
for j in $(seq 1 $i); do round /tmp/loop $j; done
(cd /mnt/loop${n} && find . | sort | while read f; do [ -f "$f" ] && echo "M $(md5sum < "$f" | cut -c1-32) $(stat -c %s "$f") $f" || echo "M dir $f"; done)
(cd /tmp/loop && find . | sort | while read f; do [ -f "$f" ] && echo "T $(md5sum < "$f" | cut -c1-32) $(stat -c %s "$f") $f" || echo "T dir $f"; done)
echo "MNT $(cd /mnt/loop${n} && find . -type f | sort | xargs md5sum | md5sum)"
echo "TMP $(cd /tmp/loop && find . -type f | sort | xargs md5sum | md5sum)"
awk 'NR > 1 { print $1 - p } { p = $1 }' /tmp/ticks | sort -rn | head -3 | sed 's/^/GAP /'
`;
    const guest = runGuest(script, { port: bridge.port!, msize: 1 << 20, timeout: 840 });
    await waitFor(() => bridgeLog.slice(before).some((l) => /msize/.test(l)), 600_000, "the guest's mount");
    await new Promise((r) => setTimeout(r, 8000));
    for (let k = 0; k < 2; k++) {
      await gw.kill();
      await gw.restart();
      await waitFor(() => resumes().length > k, 120_000, `resume ${k + 1}`);
      await new Promise((r) => setTimeout(r, 8000));
    }
    await touch(`stop${n}`);
    const r = await guest;
    if (r.code !== 0) throw new Error(`guest exited ${r.code}\n${r.stdout}\n${r.stderr}\n${bridgeLog.join("\n")}`);
    const out = r.stdout;
    const rounds = Number(/ROUNDS (\d+)/.exec(out)?.[1]);
    const mnt = /MNT (\w+)/.exec(out)?.[1];
    const tmp = /TMP (\w+)/.exec(out)?.[1];
    const gaps = [...out.matchAll(/GAP ([\d.]+)/g)].map((m) => Number(m[1]));
    const resumed = resumes();
    console.log(`guest: ${rounds} rounds; longest stalls ${gaps.map((g) => `${g.toFixed(1)} s`).join(", ")}\n${resumed.join("\n")}`);
    expect(rounds).toBeGreaterThan(10);
    // On a mismatch, say which files differ.
    const side = (k: string) => new Set(out.split("\n").filter((l) => l.startsWith(`${k} `)).map((l) => l.slice(2)));
    const [m, t] = [side("M"), side("T")];
    const differ = [...[...m].filter((l) => !t.has(l)).map((l) => `mount only: ${l}`), ...[...t].filter((l) => !m.has(l)).map((l) => `tmpfs only: ${l}`)];
    if (mnt !== tmp) console.log(`md5 mismatch after resumes:\n${differ.join("\n")}\n${bridgeLog.join("\n")}`);
    expect(mnt, differ.join("\n")).toBe(tmp);
    expect(resumed.length).toBeGreaterThanOrEqual(2);
    expect(bridgeLog.slice(before).join("\n")).not.toMatch(/lost:/);
  });
});
