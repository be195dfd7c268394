// Mount options for a dev share, measured with the real Linux client (issue
// 18): the guest runs the developer's workload (test/guest/workload.ts, the
// small tree) on a share mounted with each option, through edge9p bridge
// plain and with its lease cache (--cache), and this prints what each
// costs: the requests the guest sent, those that crossed to the gateway, the
// wait they make at a 20 ms round trip (Linux waits for each reply before
// its next request on a path, so crossings x RTT is what a guest that far
// away waits), whether the tree is the one tmpfs gets, and how soon the
// guest sees another client's write and create (coherence).
//
// Under software emulation the guest is slow: the counts are its figures,
// not its times. `npx tsx bench/mount-options.ts [OPTS...]` (each OPTS a
// mount option list, "" for Linux's default, cache=none); about 4 minutes a
// run here. Needs the guest (bash test/guest/setup).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startBridge } from "../bridge/bridge.ts";
import { runGuestWithFiles, setupGuest } from "../test/guest/support.ts";
import { SMALL, WORKLOAD_FUNCTIONS, makeTarball } from "../test/guest/workload.ts";
import { type LocalGateway, startLocalGateway } from "../test/support/local-gateway.ts";
import { runEdge9p } from "../test/support/run-cli.ts";
import { table } from "./stats.ts";
import { WAN_RTT_MS } from "./wan.ts";

/** Seconds the guest looks for another client's change before it says it did not see it. */
const LOOK_S = 20;

export interface MountRow {
  opts: string;
  cache: boolean;
  /** Requests the guest sent during the workload and its manifest. */
  sent: number;
  crossed: number;
  sameAsTmpfs: boolean;
  /** Seconds until the guest saw another client's write to a file it had read (null: not within LOOK_S). */
  seesWrite: number | null;
  /** The same for a file created in a directory it had listed. */
  seesCreate: number | null;
}

const script = (dir: string) => `${WORKLOAD_FUNCTIONS}
export TREE=small.tar
mkdir -p /tmp/ref /mnt/${dir}
work /tmp/ref
work /mnt/${dir}
manifest /tmp/ref > /tmp/ref.txt
manifest /mnt/${dir} > /tmp/mnt.txt
if cmp -s /tmp/ref.txt /tmp/mnt.txt; then echo MANIFEST-SAME; else echo MANIFEST-DIFFERS; fi
cat /mnt/${dir}/pkg0/mod0/file3.txt > /dev/null
ls /mnt/${dir}/pkg0/mod0 > /dev/null
echo CHANGE-NOW
i=0; while [ $i -lt ${LOOK_S} ] && ! grep -q changed-by-another /mnt/${dir}/pkg0/mod0/file3.txt; do sleep 1; i=$((i+1)); done
echo "SEES-WRITE $i"
i=0; while [ $i -lt ${LOOK_S} ] && [ ! -e /mnt/${dir}/pkg0/mod0/made-by-another ]; do sleep 1; i=$((i+1)); done
echo "SEES-CREATE $i"
`;

async function one(gw: LocalGateway, work: string, opts: string, cache: boolean, n: number): Promise<MountRow> {
  const dir = `mo${n}`;
  const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), cache, log: () => {} });
  const count = () => {
    const s = bridge.stats();
    return { crossed: s.requests, sent: s.requests + Object.values(s.answered).reduce((a, b) => a + b, 0) };
  };
  let atChange: { crossed: number; sent: number } | null = null;
  let changing: Promise<void> = Promise.resolve();
  let seen = "";
  try {
    const r = await runGuestWithFiles(script(dir), {
      port: bridge.port!,
      msize: 1 << 20,
      opts: opts || undefined,
      files: [join(work, "small.tar")],
      timeout: 1500,
      onStdout: (chunk) => {
        seen += chunk;
        if (atChange || !seen.includes("CHANGE-NOW")) return;
        atChange = count();
        // Another client: the file commands, straight to the gateway.
        const share = `${gw.url}/v1/shares/dev/${dir}/pkg0/mod0`;
        const f = join(work, `another-${n}`);
        writeFileSync(f, "changed-by-another\n");
        changing = (async () => {
          for (const to of [`${share}/file3.txt`, `${share}/made-by-another`]) {
            const c = await runEdge9p(["cp", f, to]);
            if (c.code !== 0) throw new Error(`cp to ${to}: ${c.stderr}`);
          }
        })();
      },
    });
    await changing;
    if (r.code !== 0 || !atChange) throw new Error(`guest (${opts || "default"}, cache ${cache}) exited ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    const look = (what: string) => {
      const i = Number(new RegExp(`${what} (\\d+)`).exec(r.stdout)![1]);
      return i < LOOK_S ? i : null;
    };
    const at = atChange as { crossed: number; sent: number };
    return { opts: opts || "(default: cache=none)", cache, sent: at.sent, crossed: at.crossed, sameAsTmpfs: r.stdout.includes("MANIFEST-SAME"), seesWrite: look("SEES-WRITE"), seesCreate: look("SEES-CREATE") };
  } finally {
    await bridge.close();
  }
}

export async function mountOptionsBench(optsList = ["", "cache=loose"]): Promise<MountRow[]> {
  await setupGuest();
  const work = mkdtempSync(join(tmpdir(), "edge9p-mount-options-"));
  makeTarball(work, "small.tar", SMALL);
  const gw = await startLocalGateway();
  const rows: MountRow[] = [];
  try {
    let n = 0;
    for (const opts of optsList) for (const cache of [false, true]) rows.push(await one(gw, work, opts, cache, n++));
  } finally {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

export function mountOptionsTable(rows: MountRow[]): string {
  const when = (s: number | null) => (s === null ? `not in ${LOOK_S} s` : `${s} s`);
  return table(
    ["mount options", "bridge", "requests sent", "crossed", `wait at ${WAN_RTT_MS} ms RTT (s)`, "tree as tmpfs", "sees another's write", "sees another's create"],
    rows.map((r) => [r.opts, r.cache ? "--cache" : "plain", r.sent, r.crossed, ((r.crossed * WAN_RTT_MS) / 1000).toFixed(0), r.sameAsTmpfs ? "yes" : "NO", when(r.seesWrite), when(r.seesCreate)]),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const only = process.argv.slice(2);
  console.log(mountOptionsTable(await mountOptionsBench(only.length ? only : undefined)));
}
