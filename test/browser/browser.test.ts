// The share browser in a real browser: Debian's Chromium, headless, driven by
// playwright-core, against a real local gateway (wrangler dev). The page
// speaks 9P over the WebSocket with the project's own client; what it uploads
// must then read back the same through the CLI and straight from R2.

import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Remote } from "../../cli/remote.ts";
import { type LocalGateway, ROOT, startLocalGateway } from "../support/local-gateway.ts";
import { runEdge9p } from "../support/run-cli.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(ROOT, "test-output", "browser");
const BIG_DIR = 2500;
const TOKEN = "browser-test-token-0123456789";

let gw: LocalGateway;
let browser: Browser;
let page: Page;
const tmp = mkdtempSync(join(tmpdir(), "edge9p-browser-"));
const big = randomBytes(20 << 20);
const folder = join(tmp, "photos");
const folderFiles = new Map<string, Buffer>();

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  mkdirSync(SHOTS, { recursive: true });
  // Two shares of the dev bucket: "dev", open, and "locked", which needs a token.
  gw = await startLocalGateway({
    config: {
      shares: {
        dev: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "open" },
        locked: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "locked", token_hashes: [createHash("sha256").update(TOKEN).digest("hex")] },
      },
    },
  });
  // A directory of 2,500 entries, made over 9P, 32 creates in flight.
  const r = await Remote.open(gw.wsUrl("dev"));
  await r.mkdir("many");
  let next = 0;
  const empty = async function* () {};
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < BIG_DIR) {
        const i = next++;
        await r.write(`many/entry-${String(i).padStart(4, "0")}.txt`, 0o644, empty());
      }
    }),
  );
  await r.write("hello.txt", 0o644, (async function* () {
    yield new TextEncoder().encode("hello from the share\n");
  })());
  r.close();
  // A folder of 50 files to upload, of 0 bytes to 300 KiB.
  mkdirSync(join(folder, "raw"), { recursive: true });
  for (let i = 0; i < 50; i++) {
    const rel = i < 10 ? `raw/img-${i}.bin` : `img-${i}.bin`;
    const bytes = randomBytes((i * 6151) % 300_000);
    writeFileSync(join(folder, rel), bytes);
    folderFiles.set(rel, bytes);
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 800 } });
  page = await context.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** An R2 object's bytes once the publisher has put it there (2 s after the file's close). */
async function fromR2(key: string): Promise<Buffer> {
  const bucket = await gw.bucket();
  const end = Date.now() + 60_000;
  for (;;) {
    const o = await bucket.get(`open/${key}`);
    if (o) return Buffer.from(await o.arrayBuffer());
    if (Date.now() > end) throw new Error(`${key} did not reach R2 in 60 s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const rows = () => page.locator("#entries tbody tr");
const row = (name: string) => page.locator(`#entries tbody tr[data-name="${name}"]`);

describe("the share browser, in Chromium", () => {
  it("lists the shares at /", async () => {
    await page.goto(`${gw.url}/`);
    await expect.poll(() => page.locator(".shares a").allTextContents()).toEqual(["dev", "locked"]);
    await page.screenshot({ path: join(SHOTS, "shares.png") });
  });

  it("opens a directory of 2,500 entries and scrolls to its end, a page at a time", async () => {
    await page.click(".shares a >> text=dev");
    await page.waitForURL(/\/shares\/dev\/$/);
    await row("many").locator("a").click();
    await page.waitForURL(/#\/many$/);
    // The first screenful comes before the rest is read.
    await expect.poll(() => rows().count()).toBeGreaterThan(0);
    expect(await rows().count()).toBeLessThan(BIG_DIR);
    for (let i = 0; i < 200 && (await page.locator(".status[data-complete]").count()) === 0; i++) {
      await page.mouse.wheel(0, 20_000);
      await page.waitForTimeout(100);
    }
    await expect.poll(() => rows().count()).toBe(BIG_DIR);
    expect(await page.locator(".status").textContent()).toBe(`${BIG_DIR} entries, in the share's order`);
    await expect.poll(() => row("entry-2499.txt").isVisible()).toBe(true);
    const names = await page.locator("#entries tbody tr").evaluateAll((trs) => trs.map((t) => t.getAttribute("data-name")));
    expect(new Set(names).size).toBe(BIG_DIR);
    await page.screenshot({ path: join(SHOTS, "directory-end.png") });
  });

  it("shows a text file, and downloads it through a signed link", async () => {
    await page.goto(`${gw.url}/shares/dev/#/`);
    await row("hello.txt").locator("button", { hasText: "hello.txt" }).click();
    await expect.poll(() => page.locator("pre.text").textContent()).toBe("hello from the share\n");
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator(".panel button", { hasText: "Download" }).click()]);
    expect(download.suggestedFilename()).toBe("hello.txt");
    expect(readFileSync((await download.path())!).toString()).toBe("hello from the share\n");
  });

  it("uploads a 20 MiB file and a folder of 50 files through the page's inputs", async () => {
    await page.goto(`${gw.url}/shares/dev/#/`);
    await page.setInputFiles("input[data-upload=files]", { name: "big.bin", mimeType: "application/octet-stream", buffer: big });
    await expect.poll(() => page.locator('.uploads li[data-path="big.bin"]').textContent(), { timeout: 120_000 }).toMatch(/done, 20 MiB/);
    await page.setInputFiles("input[data-upload=folder]", folder);
    await expect
      .poll(() => page.locator(".uploads h2 .muted").textContent(), { timeout: 120_000 })
      .toBe(`50 of 50 done`);
    await page.screenshot({ path: join(SHOTS, "uploads.png") });
    await expect.poll(() => row("photos").count()).toBe(1);
    await expect.poll(() => row("big.bin").count()).toBe(1);
  });

  it("uploads files dropped on the page", async () => {
    // Run in the page (a string: this file is compiled without the DOM's types).
    await page.evaluate(`(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(["dropped one\\n"], "dropped-1.txt"));
      dt.items.add(new File(["dropped two\\n"], "dropped-2.txt"));
      document.getElementById("app").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    })()`);
    await expect.poll(() => page.locator('.uploads li[data-path="dropped-2.txt"]').textContent()).toMatch(/done/);
    await expect.poll(() => row("dropped-1.txt").count()).toBe(1);
    const cat = await runEdge9p(["cat", `${gw.url}/v1/shares/dev/dropped-1.txt`, `${gw.url}/v1/shares/dev/dropped-2.txt`]);
    expect(cat.stdout.toString()).toBe("dropped one\ndropped two\n");
  });

  it("renames and deletes through the page", async () => {
    await row("big.bin").locator("button", { hasText: "Rename" }).click();
    await page.fill("dialog input[name=name]", "renamed.bin");
    await page.click("dialog button[value=ok]");
    await expect.poll(() => row("renamed.bin").count()).toBe(1);
    expect(await row("big.bin").count()).toBe(0);

    await row("photos").locator("a").click();
    await page.waitForURL(/#\/photos$/);
    await row("img-10.bin").locator("button", { hasText: "Delete" }).click();
    await page.click("dialog button[value=ok]");
    // 39 files and raw/ once the listing is read again after the delete,
    // sorted: the folder first, then by name.
    await expect.poll(() => page.locator(".status").textContent()).toBe("40 entries");
    expect(await row("img-10.bin").count()).toBe(0);
    const shown = await rows().evaluateAll((trs) => trs.map((t) => t.getAttribute("data-name")));
    const files = [...folderFiles.keys()].filter((k) => !k.includes("/") && k !== "img-10.bin").sort();
    expect(shown).toEqual(["raw", ...files]);
    await page.screenshot({ path: join(SHOTS, "browser.png") });
  });

  it("what the page uploaded reads back the same through the CLI and from R2", async () => {
    const share = `${gw.url}/v1/shares/dev`;
    const cat = await runEdge9p(["cat", `${share}/renamed.bin`]);
    expect(cat.stderr).toBe("");
    expect(cat.stdout.equals(big)).toBe(true);
    const down = join(tmp, "down");
    const cp = await runEdge9p(["cp", "-r", `${share}/photos`, down]);
    expect(cp.code, cp.stderr).toBe(0);
    const got = new Map<string, Buffer>();
    const walk = (dir: string, rel: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(join(dir, e.name), r);
        else got.set(r, readFileSync(join(dir, e.name)));
      }
    };
    walk(down, "");
    const want = new Map(folderFiles);
    want.delete("img-10.bin");
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k)!.equals(v), k).toBe(true);

    expect((await fromR2("renamed.bin")).equals(big)).toBe(true);
    expect((await fromR2("photos/raw/img-3.bin")).equals(folderFiles.get("raw/img-3.bin")!)).toBe(true);
    const bucket = await gw.bucket();
    // Files as plain objects (folders as "name/" markers); the deleted one gone.
    const files = async () => (await bucket.list({ prefix: "open/photos/" })).objects.map((o) => o.key).filter((k) => !k.endsWith("/")).sort();
    await expect.poll(files, { timeout: 30_000 }).toEqual([...want.keys()].map((k) => `open/photos/${k}`).sort());
    expect(await bucket.get("open/big.bin")).toBeNull();
  });

  it("asks for a share's token, again when it is wrong, and opens the share with it (sent as the WebSocket subprotocol)", async () => {
    await (await gw.bucket()).put("locked/inside.txt", "behind a token\n");
    await page.goto(`${gw.url}/shares/locked/`);
    await page.fill("dialog input[name=token]", "not-the-token-0123456789");
    await page.click("dialog button[value=ok]");
    await expect.poll(() => page.locator("dialog p").textContent()).toMatch(/That token does not open it/);
    await page.fill("dialog input[name=token]", TOKEN);
    await page.click("dialog button[value=ok]");
    await expect.poll(() => row("inside.txt").count()).toBe(1);
    // Cancelled: the page says why it cannot open the share.
    const fresh = await browser.newPage();
    await fresh.goto(`${gw.url}/shares/locked/`);
    await fresh.click("dialog button[value=cancel]");
    await expect.poll(() => fresh.locator("[role=alert]").textContent()).toBe("share locked needs a token");
    await fresh.close();
  });

  it("works on its other own origin (localhost), while a page of another origin cannot open the share's socket", async () => {
    // http://localhost:PORT and http://127.0.0.1:PORT are two origins of one
    // gateway: a page of each is the other's "other site".
    const other = await browser.newPage();
    await other.goto(`http://localhost:${gw.port}/shares/dev/#/`);
    await expect.poll(() => other.locator('#entries tbody tr[data-name="hello.txt"]').count()).toBe(1);
    const attempt = (url: string) =>
      other.evaluate(
        (u) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(u, ["9p"]);
            ws.onopen = () => {
              ws.close();
              resolve("opened");
            };
            ws.onerror = () => resolve("refused");
          }),
        url,
      );
    expect(await attempt(`ws://127.0.0.1:${gw.port}/v1/shares/dev/9p`)).toBe("refused");
    expect(await attempt(`ws://localhost:${gw.port}/v1/shares/dev/9p`)).toBe("opened");
    await other.close();
  });
});
