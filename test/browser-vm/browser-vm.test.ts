// A Linux guest in a browser tab mounts a share with no bridge: v86 (from
// npm) in Debian's Chromium (headless, driven by playwright-core) boots an
// i386 Debian kernel and busybox (test/browser-vm/setup), and its
// virtio-9p device sends every 9P message as one WebSocket message to the
// gateway (`filesystem: { proxy_url }`), against a real `wrangler dev`. The
// page is served from an origin of its own, as an embedding site's would be,
// which the gateway lists in allowed_origins. Three guests: one on an open
// share, one through a signed 9P URL on a share with tokens (which takes
// plain 9P only that way), one through a read-only URL on the same share.
// What they write must read back the same through edge9p cat and from R2.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, realpathSync } from "node:fs";
import http from "node:http";
import { homedir } from "node:os";
import { extname, join } from "node:path";
import { promisify } from "node:util";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalGateway, ROOT, freePort, startLocalGateway } from "../support/local-gateway.ts";
import { runEdge9p } from "../support/run-cli.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CACHE = join(process.env.EDGE9P_GUEST_CACHE ?? join(homedir(), ".cache/edge9p-guest"), "v86");
const TOKEN = "browser-vm-test-token-0123456789";
/** What the guest asks for; Linux's virtio transport allows at most 512000 (below). */
const ASK_MSIZE = 1 << 20;
/** An emulated i386 on a shared two-core machine: generous bounds on waiting, none on speed. */
const BOOT_MS = 300_000;
const COMMAND_MS = 240_000;

let gw: LocalGateway;
let browser: Browser;
let pages: http.Server;
let pageOrigin: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  await promisify(execFile)("bash", [join(ROOT, "test/browser-vm/setup"), "-q"], { timeout: 900_000, maxBuffer: 64 << 20 });
  const guest = realpathSync(join(CACHE, "current"));
  const v86 = join(ROOT, "node_modules/v86/build");
  // The page, v86 and the guest, from an origin that is not the gateway's.
  const files: Record<string, string> = {
    "/": join(ROOT, "test/browser-vm/vm.html"),
    "/v86/libv86.mjs": join(v86, "libv86.mjs"),
    "/v86/v86.wasm": join(v86, "v86.wasm"),
  };
  for (const f of ["bzImage", "initrd.cpio", "seabios.bin", "vgabios.bin"]) files[`/guest/${f}`] = join(guest, f);
  const types: Record<string, string> = { ".html": "text/html; charset=utf-8", ".mjs": "text/javascript", ".wasm": "application/wasm" };
  const port = await freePort();
  pageOrigin = `http://127.0.0.1:${port}`;
  pages = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", pageOrigin).pathname;
    // An empty page of this origin, for the origin test.
    if (path === "/blank") {
      res.writeHead(200, { "Content-Type": types[".html"] }).end("<!doctype html><title>blank</title>");
      return;
    }
    const file = files[path];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => pages.listen(port, "127.0.0.1", resolve));
  gw = await startLocalGateway({
    config: {
      allowed_origins: [pageOrigin],
      shares: {
        vm: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "vm" },
        // As a deployed share for browser VMs would be: tokens, and plain
        // 9P (all v86 speaks) only through a signed 9P URL.
        locked: {
          binding: "DEV_BUCKET",
          bucket: "edge9p-dev",
          prefix: "locked",
          token_hashes: [createHash("sha256").update(TOKEN).digest("hex")],
          plain_9p: "signed",
        },
      },
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await new Promise((r) => (pages ? pages.close(r) : r(null)));
});

/** A guest booted in its own tab, its 9P device on `proxyUrl`. */
class Guest {
  private constructor(
    private readonly page: Page,
    /** ms from opening the page to the guest's shell. */
    readonly bootMs: number,
    private readonly opened: number,
  ) {}

  static async boot(proxyUrl: string): Promise<Guest> {
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
    const opened = Date.now();
    await page.goto(`${pageOrigin}/?proxy=${encodeURIComponent(proxyUrl)}`);
    await page.waitForFunction(() => (globalThis as unknown as { vm: { serial: string } }).vm.serial.includes("edge9p-vm: ready"), undefined, {
      timeout: BOOT_MS,
      polling: 250,
    });
    return new Guest(page, Date.now() - opened, opened);
  }

  /** ms since the page was opened. */
  sinceOpened(): number {
    return Date.now() - this.opened;
  }

  /** Runs one shell command line in the guest: its output (stdout and stderr) and exit status. */
  async run(command: string, timeout = COMMAND_MS): Promise<{ out: string; rc: number }> {
    const from = await this.page.evaluate(() => (globalThis as unknown as { vm: { serial: string } }).vm.serial.length);
    await this.page.evaluate((line) => (globalThis as unknown as { vm: { send(s: string): void } }).vm.send(`${line}\n`), command);
    const handle = await this.page.waitForFunction(
      (start) => {
        const s = (globalThis as unknown as { vm: { serial: string } }).vm.serial.slice(start);
        return /@@rc=\d+\n/.test(s) ? s : null;
      },
      from,
      { timeout, polling: 100 },
    );
    const text = (await handle.jsonValue()) as string;
    const m = /@@rc=(\d+)\n/.exec(text)!;
    return { out: text.slice(0, m.index), rc: Number(m[1]) };
  }

  /** run(), failing with the output unless the command succeeds. */
  async ok(command: string, timeout?: number): Promise<string> {
    const r = await this.run(command, timeout);
    expect(r.rc, `${command}\n${r.out}`).toBe(0);
    return r.out;
  }

  /** Mounts the share at /mnt: ms the mount took and the msize the guest got (its /proc/mounts). */
  async mount(): Promise<{ mountMs: number; msize: number; bootToMountMs: number }> {
    const t = Date.now();
    await this.ok(`mount -t 9p -o trans=virtio,version=9p2000.L,msize=${ASK_MSIZE} host9p /mnt`);
    const mountMs = Date.now() - t;
    const bootToMountMs = this.sinceOpened();
    const line = await this.ok("grep ' /mnt 9p ' /proc/mounts");
    const msize = Number(/msize=(\d+)/.exec(line)?.[1]);
    return { mountMs, msize, bootToMountMs };
  }

  async close(): Promise<void> {
    await this.page.close();
  }
}

/** Prints a guest's figures: boot, mount and the msize it got. */
function report(what: string, g: Guest, m: { mountMs: number; msize: number; bootToMountMs: number }): void {
  console.log(
    `browser VM (${what}): boot ${(g.bootMs / 1000).toFixed(1)} s, mount ${(m.mountMs / 1000).toFixed(1)} s, boot-to-mount ${(m.bootToMountMs / 1000).toFixed(1)} s, msize ${m.msize} (asked ${ASK_MSIZE})`,
  );
}

/** The md5 hex of some bytes. */
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
/** md5sum's hashes, by path, from its output. */
function md5sums(out: string): Record<string, string> {
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .map(([h, p]) => [p!, h!]),
  );
}

/** An R2 object's bytes once the publisher has put it there, or null if it is (or stays) absent. */
async function fromR2(key: string, want: "present" | "absent"): Promise<Buffer | null> {
  const bucket = await gw.bucket();
  const end = Date.now() + 60_000;
  for (;;) {
    const o = await bucket.get(key);
    if (want === "present" && o) return Buffer.from(await o.arrayBuffer());
    if (want === "absent" && !o) return null;
    if (Date.now() > end) throw new Error(`${key} is ${o ? "still" : "not"} in R2 after 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Mints a signed 9P URL of `share` with the token. */
async function mint(share: string, readOnly: boolean): Promise<string> {
  const r = await fetch(`${gw.url}/v1/shares/${share}/links`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ kind: "9p", read_only: readOnly, expires_in: 3600 }),
  });
  const body = (await r.json()) as { url: string; read_only: boolean };
  expect(r.status, JSON.stringify(body)).toBe(200);
  expect(body.read_only).toBe(readOnly);
  return body.url;
}

describe("a browser VM mounts a share with v86's virtio-9p over the WebSocket", () => {
  it("in Chromium, a page of an allowed origin opens the 9P socket offering no subprotocol; the same page on another origin is refused", async () => {
    const attempt = async (origin: string) => {
      const page = await browser.newPage();
      await page.goto(`${origin}/blank`);
      const r = await page.evaluate(
        (u) =>
          new Promise<string>((resolve) => {
            // As v86 opens it: no subprotocol.
            const ws = new WebSocket(u);
            ws.onopen = () => {
              resolve(`opened, protocol "${ws.protocol}"`);
              ws.close();
            };
            ws.onerror = () => resolve("refused");
          }),
        gw.wsUrl("vm"),
      );
      await page.close();
      return r;
    };
    expect(await attempt(pageOrigin)).toBe('opened, protocol ""');
    expect(await attempt(pageOrigin.replace("127.0.0.1", "localhost"))).toBe("refused");
  });

  it("an open share: the guest mounts it with trans=virtio, reads what R2 holds, writes, reads back, renames and removes; the bytes land", { timeout: 900_000 }, async () => {
    await (await gw.bucket()).put("vm/from-r2.txt", "put into R2 by another tool\n");
    const g = await Guest.boot(gw.wsUrl("vm"));
    try {
      const m = await g.mount();
      report("open share", g, m);
      // Linux's virtio transport takes at most PAGE_SIZE * (VIRTQUEUE_NUM - 3)
      // = 4096 * 125 bytes (net/9p/trans_virtio.c, p9_virtio_trans.maxsize):
      // it lowers the asked 1 MiB to that before its Tversion.
      expect(m.msize).toBe(512000);
      expect(await g.ok("cat /mnt/from-r2.txt")).toBe("put into R2 by another tool\n");
      // 4 MiB of random bytes, made in the guest's tmpfs and copied in.
      await g.ok("dd if=/dev/urandom of=/tmp/blob.bin bs=65536 count=64 2>/dev/null && cp /tmp/blob.bin /mnt/blob.bin");
      const sums = md5sums(await g.ok("echo 3 > /proc/sys/vm/drop_caches; md5sum /tmp/blob.bin /mnt/blob.bin"));
      expect(sums["/mnt/blob.bin"]).toBe(sums["/tmp/blob.bin"]);
      await g.ok("mkdir /mnt/dir && echo 'a note from the VM' > /mnt/note.txt && mv /mnt/note.txt /mnt/dir/renamed.txt");
      await g.ok("echo 'short-lived' > /mnt/gone.txt && rm /mnt/gone.txt");
      expect(await g.ok("ls -1 /mnt /mnt/dir")).toBe("/mnt:\nblob.bin\ndir\nfrom-r2.txt\n\n/mnt/dir:\nrenamed.txt\n");
      expect(await g.ok("cat /mnt/dir/renamed.txt")).toBe("a note from the VM\n");
      await g.ok("umount /mnt");

      const share = `${gw.url}/v1/shares/vm`;
      const blob = await runEdge9p(["cat", `${share}/blob.bin`]);
      expect(blob.stderr).toBe("");
      expect(md5(blob.stdout)).toBe(sums["/tmp/blob.bin"]);
      expect(blob.stdout.length).toBe(4 << 20);
      expect((await runEdge9p(["cat", `${share}/dir/renamed.txt`])).stdout.toString()).toBe("a note from the VM\n");
      for (const gone of ["note.txt", "gone.txt"]) expect((await runEdge9p(["cat", `${share}/${gone}`])).code, gone).toBe(1);
      expect(md5((await fromR2("vm/blob.bin", "present"))!)).toBe(sums["/tmp/blob.bin"]);
      expect((await fromR2("vm/dir/renamed.txt", "present"))!.toString()).toBe("a note from the VM\n");
      await fromR2("vm/note.txt", "absent");
      await fromR2("vm/gone.txt", "absent");
    } finally {
      await g.close();
    }
  });

  it("a share with tokens: the guest mounts it through a signed 9P URL, writes, renames and removes; edge9p cat with the token reads it", { timeout: 900_000 }, async () => {
    const url = await mint("locked", false);
    expect(url).not.toContain(TOKEN);
    const g = await Guest.boot(url);
    try {
      const m = await g.mount();
      report("signed URL, share with tokens", g, m);
      expect(m.msize).toBe(512000);
      await g.ok("dd if=/dev/urandom of=/tmp/r.bin bs=4096 count=100 2>/dev/null && cp /tmp/r.bin /mnt/r.bin");
      await g.ok("echo 'from a signed URL' > /mnt/tmp.txt && mv /mnt/tmp.txt /mnt/signed.txt && echo x > /mnt/x && rm /mnt/x");
      const sums = md5sums(await g.ok("echo 3 > /proc/sys/vm/drop_caches; md5sum /tmp/r.bin /mnt/r.bin"));
      expect(sums["/mnt/r.bin"]).toBe(sums["/tmp/r.bin"]);
      expect(await g.ok("ls -1 /mnt")).toBe("r.bin\nsigned.txt\n");
      await g.ok("umount /mnt");
      const share = `${gw.url}/v1/shares/locked`;
      expect((await runEdge9p(["cat", "--token", TOKEN, `${share}/signed.txt`])).stdout.toString()).toBe("from a signed URL\n");
      expect(md5((await runEdge9p(["cat", "--token", TOKEN, `${share}/r.bin`])).stdout)).toBe(sums["/tmp/r.bin"]);
      expect((await runEdge9p(["cat", `${share}/signed.txt`])).code).toBe(1);
      expect(md5((await fromR2("locked/r.bin", "present"))!)).toBe(sums["/tmp/r.bin"]);
      await fromR2("locked/tmp.txt", "absent");
    } finally {
      await g.close();
    }
  });

  it("a read-only signed URL: the guest reads the share, and every change fails with EROFS", { timeout: 900_000 }, async () => {
    const g = await Guest.boot(await mint("locked", true));
    try {
      const m = await g.mount();
      report("read-only signed URL", g, m);
      expect(await g.ok("cat /mnt/signed.txt")).toBe("from a signed URL\n");
      for (const change of [
        "echo new > /mnt/new.txt",
        "echo more >> /mnt/signed.txt",
        "mkdir /mnt/d",
        "mv /mnt/signed.txt /mnt/moved.txt",
        "rm /mnt/r.bin",
        "chmod 600 /mnt/signed.txt",
        "ln -s signed.txt /mnt/link",
        "touch /mnt/signed.txt",
      ]) {
        const r = await g.run(change);
        expect(r.rc, change).not.toBe(0);
        expect(r.out, change).toMatch(/Read-only file system/);
      }
      expect(await g.ok("ls -1 /mnt")).toBe("r.bin\nsigned.txt\n");
      await g.ok("umount /mnt");
      const ls = await runEdge9p(["ls", "--token", TOKEN, `${gw.url}/v1/shares/locked/`]);
      expect(ls.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["r.bin", "signed.txt"]);
      expect((await runEdge9p(["cat", "--token", TOKEN, `${gw.url}/v1/shares/locked/signed.txt`])).stdout.toString()).toBe("from a signed URL\n");
    } finally {
      await g.close();
    }
  });
});
