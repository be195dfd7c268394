// Makes the recordings in test/fixtures/captures (format in its README.md);
// nothing else uses it.
//
//   npx tsx scripts/record-9p.ts relay --listen PORT --to HOST:PORT --out FILE.bin
//       a TCP relay that passes bytes both ways unchanged and records every
//       whole 9P message of the first connection, until it closes
//   npx tsx scripts/record-9p.ts txt FILE.bin
//       writes FILE.txt, the listing beside each recording
//   npx tsx scripts/record-9p.ts devshare [OUT_DIR]
//       records linux61-devshare: a local gateway with an empty share, the
//       bridge, the relay in front of it, and the guest's v9fs client
//       mounting the relay and running DEVSHARE_WORKLOAD

import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { startBridge } from "../bridge/bridge.ts";
import { Framer, PLATFORM_MSIZE_CEILING, decode } from "../protocol/index.ts";
import { runGuest, setupGuest } from "../test/guest/support.ts";
import { type Record, parseCapture } from "../test/node/support/capture.ts";
import { ROOT, startLocalGateway } from "../test/support/local-gateway.ts";

export interface Recorder {
  readonly port: number;
  /** Resolves with the records once the recorded connection has closed on both sides. */
  readonly done: Promise<Record[]>;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1:`listen` (0: any port) and relays the first
 * connection to `to`, recording each direction's messages as they pass.
 * Bytes are forwarded as they arrive, before framing, so the relay changes
 * neither the stream nor its timing beyond a copy.
 */
export function startRecorder(listen: number, to: { host: string; port: number }): Promise<Recorder> {
  const records: Record[] = [];
  let finish!: (r: Record[]) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<Record[]>((res, rej) => {
    finish = res;
    fail = rej;
  });
  const server = net.createServer((client) => {
    // One connection is one recording: a second client would interleave.
    server.close();
    client.setNoDelay(true);
    const upstream = net.connect(to.port, to.host);
    upstream.setNoDelay(true);
    // Records go into one list in the order they are framed here, so the
    // two directions interleave as the relay saw them.
    const tap = (dir: "T" | "R") => {
      const framer = new Framer(PLATFORM_MSIZE_CEILING);
      return (chunk: Buffer) => {
        try {
          // The framer may hand back a view of the chunk: keep a copy.
          framer.push(chunk, (m) => records.push({ dir, bytes: m.slice() }));
        } catch (e) {
          fail(e as Error);
        }
      };
    };
    client.on("data", tap("T"));
    upstream.on("data", tap("R"));
    client.pipe(upstream);
    upstream.pipe(client);
    let open = 2;
    const closed = () => {
      if (--open === 0) finish(records);
    };
    client.on("close", closed);
    upstream.on("close", closed);
    client.on("error", () => client.destroy());
    upstream.on("error", (e) => {
      client.destroy();
      fail(e);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen, "127.0.0.1", () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        done,
        close: () => new Promise<void>((res) => (server.listening ? server.close(() => res()) : res())),
      });
    });
  });
}

/** The records as a .bin file: direction byte, then the whole message. */
export function encodeCapture(records: Record[]): Uint8Array {
  const out = new Uint8Array(records.reduce((n, r) => n + 1 + r.bytes.byteLength, 0));
  let at = 0;
  for (const r of records) {
    out[at++] = r.dir.charCodeAt(0);
    out.set(r.bytes, at);
    at += r.bytes.byteLength;
  }
  return out;
}

/**
 * The .txt listing: a line of message counts by type (sorted by name), then
 * one line per record with direction, type, tag and length, and the fields a
 * reader looks for first: msize and version of T/Rversion, errno of Rlerror.
 */
export function describeCapture(records: Record[]): string {
  const text = new TextDecoder();
  const counts = new Map<string, number>();
  const lines: string[] = [];
  for (const r of records) {
    const m = decode(r.bytes, "9P2000.L");
    counts.set(m.type, (counts.get(m.type) ?? 0) + 1);
    let line = `${r.dir} ${m.type} tag=${m.tag} len=${r.bytes.byteLength}`;
    if (m.type === "Tversion" || m.type === "Rversion") line += ` msize=${m.msize} ${text.decode(m.version)}`;
    if (m.type === "Rlerror") line += ` errno=${m.ecode}`;
    lines.push(line);
  }
  const head = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([t, n]) => `${t}:${n}`);
  return [head.join(" "), ...lines].join("\n") + "\n";
}

/** A small deterministic generator, so the tarball is the same on every run. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x;
  };
}

const WORDS = ["buffer", "count", "offset", "flags", "entry", "node", "state", "reply", "queue", "limit", "TODO", "value"];

/** Text that looks like source, `size` bytes or a little more, the same for the same seed. */
function sourceText(seed: number, size: number): string {
  const next = lcg(seed);
  let s = `/* file ${seed}: generated for the devshare recording */\n`;
  while (s.length < size) {
    const w = () => WORDS[next() % WORDS.length]!;
    s += next() % 5 === 0 ? `\n${w()}_${w()}(void) {\n` : `  ${w()} = ${w()} + ${next() % 1000}; /* ${w()} */\n`;
  }
  return s;
}

/**
 * 100 small files (about 100 KB) in nested directories, as a tar that is the
 * same bytes on every run: names sorted, one mtime, owner 0:0. (150 made a
 * 2.3 MB recording: each file costs about 40 requests, most of them
 * Tgetattr and its 160-byte reply, besides its data.)
 */
export function makeDevshareTar(dir: string): string {
  const src = join(dir, "tree");
  const files: string[] = ["README.md", "Makefile"];
  for (const mod of ["core", "io", "net", "util"]) {
    for (let i = 0; i < 14; i++) files.push(`src/${mod}/${mod}${String(i).padStart(2, "0")}.${i % 3 === 0 ? "h" : "c"}`);
    for (let i = 0; i < 4; i++) files.push(`src/${mod}/tests/t${i}.c`);
  }
  for (let i = 0; i < 8; i++) files.push(`docs/page${i}.md`, `docs/api/call${i}.md`);
  for (let i = 0; i < 10; i++) files.push(`include/inc${String(i).padStart(2, "0")}.h`);
  const stamp = new Date("2024-05-06T07:08:09Z");
  files.forEach((f, n) => {
    const p = join(src, f);
    mkdirSync(join(p, ".."), { recursive: true });
    // 150 B to 1.8 KiB: a source tree's many small files.
    writeFileSync(p, sourceText(n + 1, 150 + ((n * 7919) % 1700)));
    chmodSync(p, f === "Makefile" ? 0o755 : 0o644);
    utimesSync(p, stamp, stamp);
  });
  const tar = join(dir, "devshare.tar");
  execFileSync("tar", [
    "-C", src, "--sort=name", "--mtime=2024-05-06 07:08:09Z", "--owner=0", "--group=0", "--numeric-owner",
    "--format=ustar", "-cf", tar, ".",
  ]);
  if (files.length !== 100) throw new Error(`tree has ${files.length} files`);
  return tar;
}

/**
 * What a developer does in a shared source tree, busybox tools only, in the
 * directory $1 (the mount's root when recording; a tmpfs to compare with).
 * Output stays small: the serial line is slow.
 */
export const DEVSHARE_WORKLOAD = `
work() {
  set -e
  cd "$1"
  tar -xf /files/devshare.tar
  sed -i 's/TODO/DONE/g' src/core/core01.c src/io/io04.c include/inc03.h
  echo '/* appended */' >> src/util/util07.c
  echo 'see docs/reference' >> README.md
  mv src/io/io02.c src/io/io02-renamed.c
  mv docs/api docs/reference
  mv include/inc05.h src/core/
  cp -a src/net src/net-copy
  rm -r src/util/tests
  find . -type f | xargs stat > /dev/null
  find . -type f | sort | xargs md5sum > /tmp/sums.$2
  ls -laR > /tmp/ls.$2
  cd /
  set +e
}
work "$EDGE9P_MNT" mnt
mkdir /tmp/ref && mount -t tmpfs tmpfs /tmp/ref && work /tmp/ref ref
echo "files $(wc -l < /tmp/sums.mnt), ls -laR lines $(wc -l < /tmp/ls.mnt)"
if cmp -s /tmp/sums.mnt /tmp/sums.ref; then echo "md5sums match tmpfs"; else echo "md5sums DIFFER from tmpfs"; diff /tmp/sums.ref /tmp/sums.mnt | head -20; exit 1; fi
`;

/** Records linux61-devshare into `outDir` (.bin and .txt). */
async function recordDevshare(outDir: string): Promise<void> {
  await setupGuest();
  const work = mkdtempSync(join(tmpdir(), "edge9p-devshare-"));
  const gw = await startLocalGateway();
  try {
    const tar = makeDevshareTar(work);
    // Nothing is put in the share: the workload runs at its root, which a
    // replay can stand in for with any empty directory.
    const bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev") });
    const rec = await startRecorder(0, { host: "127.0.0.1", port: bridge.port! });
    try {
      const r = await runGuest(DEVSHARE_WORKLOAD, { port: rec.port, msize: 1048576, files: [tar], timeout: 900 });
      process.stdout.write(r.stdout);
      if (r.code !== 0) throw new Error(`guest exited ${r.code}\n${r.stderr}`);
      const records = await rec.done;
      writeFileSync(join(outDir, "linux61-devshare.bin"), encodeCapture(records));
      writeFileSync(join(outDir, "linux61-devshare.txt"), describeCapture(records));
      console.log(`${records.length} messages, ${encodeCapture(records).byteLength} bytes`);
    } finally {
      await rec.close();
      await bridge.close();
    }
  } finally {
    await gw.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === "relay") {
    const { values } = parseArgs({ args: rest, options: { listen: { type: "string" }, to: { type: "string" }, out: { type: "string" } } });
    const [host, port] = (values.to ?? "").split(":");
    if (!values.listen || !host || !port || !values.out) throw new Error("relay --listen PORT --to HOST:PORT --out FILE.bin");
    const rec = await startRecorder(Number(values.listen), { host, port: Number(port) });
    console.error(`recording on 127.0.0.1:${rec.port} -> ${values.to}`);
    const records = await rec.done;
    writeFileSync(values.out, encodeCapture(records));
    writeFileSync(values.out.replace(/\.bin$/, "") + ".txt", describeCapture(records));
    console.error(`${records.length} messages to ${values.out}`);
  } else if (cmd === "txt" && rest[0]) {
    const bin = rest[0];
    writeFileSync(bin.replace(/\.bin$/, "") + ".txt", describeCapture(parseCapture(new Uint8Array(readFileSync(bin)), bin)));
  } else if (cmd === "devshare") {
    await recordDevshare(rest[0] ?? join(ROOT, "test/fixtures/captures"));
  } else {
    console.error("usage: record-9p.ts relay --listen PORT --to HOST:PORT --out FILE.bin | txt FILE.bin | devshare [OUT_DIR]");
    process.exit(2);
  }
}
