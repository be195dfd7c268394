// The real Linux 9p client (kernel 6.1 in a QEMU guest) mounts a share
// through edge9p bridge at msize 1 MiB and reads what was put into R2.

import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../bridge/bridge.ts";
import { type LocalGateway, startLocalGateway } from "../support/local-gateway.ts";
import { diodTool, md5, runGuest, setupGuest } from "./support.ts";

const MiB = 1 << 20;
const FILES: Record<string, Uint8Array> = {
  "tree/empty.bin": new Uint8Array(0),
  "tree/one.bin": new Uint8Array([0x2a]),
  "tree/exact-1MiB.bin": randomBytes(MiB),
  "tree/1MiB-plus-1.bin": randomBytes(MiB + 1),
  "tree/nested/deeper/note.txt": new TextEncoder().encode("nested\n"),
  "tree/nested/sibling.txt": new TextEncoder().encode("sibling\n"),
  "random-64MiB.bin": randomBytes(64 * MiB),
};

let gw: LocalGateway;
let bridge: Bridge;
const bridgeLog: string[] = [];

beforeAll(async () => {
  await setupGuest();
  gw = await startLocalGateway();
  const b = await gw.bucket();
  for (const [k, v] of Object.entries(FILES)) await b.put(k, v);
  await b.put("tree/marked/", ""); // an empty directory, as a dir/ marker
  bridge = await startBridge({ listen: { host: "127.0.0.1", port: 0 }, url: gw.wsUrl("dev"), log: (l) => bridgeLog.push(l) });
}, 900_000);

afterAll(async () => {
  await bridge?.close();
  await gw?.stop();
});

describe("Linux guest, through edge9p bridge", () => {
  it("mounts at msize 1 MiB; ls -laR, cat, md5sum, stat and df match what is in R2", { timeout: 600_000 }, async () => {
    const script = `
set -e
cd /mnt
grep ' /mnt ' /proc/mounts
echo "== ls"
ls -laR . > /tmp/ls.txt; cat /tmp/ls.txt
echo "== find"
find . | sort
echo "== md5"
find . -type f | sort | xargs md5sum
echo "== stat"
find . | sort | while read f; do stat -c 'STAT %n %s %F %a %b %B' "$f"; done
echo "== cat"
cat tree/nested/deeper/note.txt
echo "== df"
df -k /mnt | tail -1
stat -f -c 'STATFS %S %b %f %a %l %t' /mnt
`;
    const r = await runGuest(script, { port: bridge.port!, msize: MiB });
    if (r.code !== 0) throw new Error(`guest exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    const out = r.stdout;
    expect(out).toMatch(/msize=1048576/);
    expect(bridgeLog.join("\n")).toMatch(/9P2000\.L, msize 1048576/);

    // Every file, byte for byte.
    for (const [path, data] of Object.entries(FILES)) {
      expect(out).toContain(`${md5(data)}  ./${path}`);
      expect(out).toMatch(new RegExp(`STAT \\./${path.replace(/[.]/g, "\\.")} ${data.byteLength} regular (empty )?file 644`));
    }
    const found = out.split("== find\n")[1]!.split("== md5")[0]!.trim().split("\n");
    expect(found).toEqual(
      [
        ".",
        "./random-64MiB.bin",
        "./tree",
        "./tree/1MiB-plus-1.bin",
        "./tree/empty.bin",
        "./tree/exact-1MiB.bin",
        "./tree/marked",
        "./tree/nested",
        "./tree/nested/deeper",
        "./tree/nested/deeper/note.txt",
        "./tree/nested/sibling.txt",
        "./tree/one.bin",
      ].sort(),
    );
    expect(out).toMatch(/STAT \.\/tree\/marked 0 directory 755/);
    expect(out).toContain("== cat\nnested\n");
    // blocks = ceil(size / 512): 1 MiB + 1 takes 2049.
    expect(out).toMatch(/STAT \.\/tree\/1MiB-plus-1\.bin 1048577 regular file 644 2049 512/);
    // statfs: 4 KiB blocks, 2^40 bytes of quota, namelen 255, V9FS_MAGIC.
    expect(out).toMatch(/STATFS 4096 268435456 \d+ \d+ 255 1021997/);
    const used = Object.values(FILES).reduce((n, d) => n + d.byteLength, 0);
    const df = /STATFS 4096 268435456 (\d+) (\d+)/.exec(out)!;
    expect(268435456 - Number(df[1])).toBe(Math.ceil(used / 4096));
  });

  it("lists and reads the same files with diodls and diodcat through the bridge", { timeout: 300_000 }, async () => {
    const server = `127.0.0.1:${bridge.port}`;
    const ls = (await diodTool("diodls", ["-s", server, "-a", "/", "-l", "/tree"])).toString();
    for (const name of ["empty.bin", "one.bin", "exact-1MiB.bin", "1MiB-plus-1.bin", "nested", "marked"]) {
      expect(ls).toMatch(new RegExp(` ${name.replace(/[.]/g, "\\.")}$`, "m"));
    }
    expect(ls).toMatch(/ 1048577 .* 1MiB-plus-1\.bin$/m);
    for (const path of ["tree/one.bin", "tree/exact-1MiB.bin", "tree/1MiB-plus-1.bin", "random-64MiB.bin"]) {
      const got = await diodTool("diodcat", ["-s", server, "-a", "/", path]);
      expect(md5(got)).toBe(md5(FILES[path]!));
    }
  });
});
