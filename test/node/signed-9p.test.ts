// Clients that cannot send headers or choose a subprotocol (v86's virtio-9p
// proxy opens `new WebSocket(url)` and nothing more), against a real
// `wrangler dev`: the handshake rules for such a socket, and signed 9P URLs
// (POST /v1/shares/NAME/links {"kind": "9p"}) standing in for the token.
// Each refusal is tried the way an attacker would: another page's origin,
// an expired, altered or replayed URL, one share's URL on another, a
// read-only URL used to change files.

import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ERRNO, NOFID, P9Error, clientOverWebSocket, type Client } from "../../protocol/index.ts";
import { type LocalGateway, OPERATOR_TOKEN, startLocalGateway } from "../support/local-gateway.ts";
import { runEdge9p } from "../support/run-cli.ts";

const TOKEN = "signed-9p-test-token-0123456789";
const TWIN_TOKEN = "signed-9p-twin-token-0123456789";
const sha = (t: string) => createHash("sha256").update(t).digest("hex");
/** The origin of a page that embeds a browser VM (allowed_origins). */
const VM_PAGE = "https://vm.example";

let gw: LocalGateway;

beforeAll(async () => {
  gw = await startLocalGateway({
    config: {
      allowed_origins: [VM_PAGE],
      shares: {
        dev: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "open" },
        // A share with tokens that takes plain 9P (the local default).
        locked: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "locked", token_hashes: [sha(TOKEN)] },
        // Another share of the same bucket, with its own token: its URLs are not locked's.
        twin: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "twin", token_hashes: [sha(TWIN_TOKEN)] },
        // As a deployed gateway has it: plain 9P refused...
        acked: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "acked", token_hashes: [sha(TOKEN)], plain_9p: false },
        // ...or taken only through a signed 9P URL.
        vms: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "vms", token_hashes: [sha(TOKEN)], plain_9p: "signed" },
      },
    },
  });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
});

interface Opened {
  status: number;
  /** The refusal's JSON error, or "" for a 101. */
  error: string;
  /** The 101's (or refusal's) Sec-WebSocket-Protocol, null when absent. */
  protocol: string | null;
  ws: WebSocket | null;
}

/**
 * Opens a WebSocket offering `protocols` (none: as `new WebSocket(url)` in a
 * browser) with `headers`. `ws`, like Chromium, fails a 101 that names a
 * protocol the request did not offer; that shows as status -1.
 */
function open(url: string, protocols: string[] = [], headers: Record<string, string> = {}): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { headers, perMessageDeflate: false });
    let protocol: string | null = null;
    ws.once("upgrade", (res: IncomingMessage) => {
      protocol = (res.headers["sec-websocket-protocol"] as string | undefined) ?? null;
    });
    ws.once("open", () => resolve({ status: 101, error: "", protocol, ws }));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => {
        let error = body;
        try {
          error = (JSON.parse(body) as { error: string }).error;
        } catch {
          // not JSON: kept as it came
        }
        resolve({ status: res.statusCode ?? 0, error, protocol: (res.headers["sec-websocket-protocol"] as string | undefined) ?? null, ws: null });
      });
    });
    ws.once("error", (e) => resolve({ status: -1, error: e.message, protocol, ws: null }));
  });
}

/** Tversion and Tattach over an open socket: fid 0 is the root. */
async function attach(ws: WebSocket): Promise<Client> {
  const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
  await c.version(1 << 20);
  await c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 });
  return c;
}

async function post(path: string, body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${gw.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** A signed 9P URL for `share`, minted with `token`. */
async function mint(share: string, token: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await post(`/v1/shares/${share}/links`, { kind: "9p", ...extra }, token);
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return r.json.url as string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Creates `name` in the root with `text` in it, over an attached client. */
async function create(c: Client, name: string, text: string): Promise<void> {
  const fid = c.allocFid();
  await c.request({ type: "Twalk", fid: 0, newfid: fid, wnames: [] });
  await c.request({ type: "Tlcreate", fid, name, flags: 1 /* O_WRONLY */, mode: 0o644, gid: 0 });
  await c.request({ type: "Twrite", fid, offset: 0n, data: enc.encode(text) });
  await c.request({ type: "Tclunk", fid });
  c.releaseFid(fid);
}

/** The errno a request fails with (0 when it succeeds). */
async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    if (e instanceof P9Error) return e.errno;
    throw e;
  }
}

describe("the 9P handshake for clients that cannot choose a subprotocol", () => {
  it("accepts an upgrade that offers no subprotocol as plain 9P, and its 101 names none (as Chromium demands)", async () => {
    const o = await open(gw.wsUrl("dev"));
    expect(o.status, o.error).toBe(101);
    expect(o.protocol).toBeNull();
    const c = await attach(o.ws!);
    const w = await c.request({ type: "Twalk", fid: 0, newfid: 1, wnames: [] });
    expect(w.qids).toEqual([]);
    o.ws!.close(1000);
  });

  it("names in the 101 the protocol it took from those offered: 9p, 9p.ack, or 9p.ack of both", async () => {
    for (const [offered, answered] of [
      [["9p"], "9p"],
      [["9p.ack"], "9p.ack"],
      [["9p.ack", "9p"], "9p.ack"],
      [["9p", "edge9p-token." + TOKEN], "9p"],
    ] as [string[], string][]) {
      const o = await open(gw.wsUrl(offered.some((p) => p.startsWith("edge9p-token.")) ? "locked" : "dev"), offered);
      expect(o.status, `${offered}: ${o.error}`).toBe(101);
      expect(o.protocol, offered.join(",")).toBe(answered);
      o.ws!.close(1000);
    }
  });

  it("refuses an upgrade that offers protocols but neither 9p nor 9p.ack, with 400 and why", async () => {
    const o = await open(gw.wsUrl("dev"), ["chat", "mqtt"]);
    expect(o.status).toBe(400);
    expect(o.error).toBe('WebSocket subprotocol must include "9p" or "9p.ack" (offered: chat, mqtt)');
    // A token alone is no protocol to speak.
    const t = await open(gw.wsUrl("locked"), [`edge9p-token.${TOKEN}`]);
    expect(t.status).toBe(400);
  });

  it("keeps the origin rules: a page of an allowed origin gets in without a subprotocol, any other page gets 403 first", async () => {
    const allowed = await open(gw.wsUrl("dev"), [], { Origin: VM_PAGE });
    expect(allowed.status, allowed.error).toBe(101);
    allowed.ws!.close(1000);
    const evil = await open(gw.wsUrl("dev"), [], { Origin: "https://evil.example" });
    expect(evil.status).toBe(403);
    expect(evil.error).toMatch(/origin https:\/\/evil\.example are refused/);
  });

  it("refuses plain 9P (no subprotocol, or 9p alone) on a share with plain_9p = false, and takes 9p.ack there", async () => {
    for (const offered of [[], ["9p"]]) {
      const o = await open(gw.wsUrl("acked"), offered, { Authorization: `Bearer ${TOKEN}` });
      expect(o.status, offered.join(",")).toBe(400);
      expect(o.error).toMatch(/share acked takes only clients that acknowledge what they read/);
    }
    const ok = await open(gw.wsUrl("acked"), ["9p.ack"], { Authorization: `Bearer ${TOKEN}` });
    expect(ok.status, ok.error).toBe(101);
    ok.ws!.close(1000);
  });
});

describe("signed 9P URLs", () => {
  it("mints a wss-style URL carrying expiry, scope and signature, never the token; it opens the share with no header at all", async () => {
    const r = await post("/v1/shares/locked/links", { kind: "9p", expires_in: 600 }, TOKEN);
    expect(r.status).toBe(200);
    const url = new URL(r.json.url as string);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe(gw.wsUrl("locked"));
    expect([...url.searchParams.keys()].sort()).toEqual(["access", "expires", "signature"]);
    expect(url.searchParams.get("access")).toBe("rw");
    expect(r.json.read_only).toBe(false);
    expect(Date.parse(r.json.expires as string) / 1000).toBe(Number(url.searchParams.get("expires")));
    expect(r.json.url as string).not.toContain(TOKEN);
    // Minting needs the token.
    expect((await post("/v1/shares/locked/links", { kind: "9p" })).status).toBe(401);

    const o = await open(url.toString(), [], { Origin: VM_PAGE });
    expect(o.status, o.error).toBe(101);
    expect(o.protocol).toBeNull();
    const c = await attach(o.ws!);
    await create(c, "through-a-url.txt", "written through a signed 9P URL\n");
    o.ws!.close(1000);
    const cat = await runEdge9p(["cat", "--token", TOKEN, `${gw.url}/v1/shares/locked/through-a-url.txt`]);
    expect(cat.stderr).toBe("");
    expect(cat.stdout.toString()).toBe("written through a signed 9P URL\n");
  });

  it("refuses, before the upgrade and saying why, an expired URL, an altered one and one share's URL on another", async () => {
    const url = new URL(await mint("locked", TOKEN));
    const short = new URL(await mint("locked", TOKEN, { expires_in: 1 }));
    // expires is in whole seconds and still valid during its own second.
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await open(short.toString());
    expect(expired.status).toBe(403);
    expect(expired.error).toBe("this 9P URL has expired: ask for a new one");

    const altered = (k: string, v: string) => {
      const u = new URL(url);
      u.searchParams.set(k, v);
      return u.toString();
    };
    const sig = url.searchParams.get("signature")!;
    for (const bad of [
      altered("expires", String(Number(url.searchParams.get("expires")) + 86_400)),
      altered("access", "ro"),
      altered("signature", (sig[0] === "0" ? "1" : "0") + sig.slice(1)),
      altered("signature", "zz"),
      altered("access", "admin"),
      // expiry of the other URL, this one's signature
      altered("expires", short.searchParams.get("expires")!),
    ]) {
      const o = await open(bad);
      expect(o.status, bad).toBe(403);
      expect(o.error).toBe("this 9P URL's signature is not valid for share locked");
    }
    // locked's URL on twin (same bucket, its own object and key), and twin's own works.
    const onTwin = new URL(url);
    onTwin.pathname = "/v1/shares/twin/9p";
    const other = await open(onTwin.toString());
    expect(other.status).toBe(403);
    expect(other.error).toBe("this 9P URL's signature is not valid for share twin");
    const twins = await open(await mint("twin", TWIN_TOKEN));
    expect(twins.status, twins.error).toBe(101);
    twins.ws!.close(1000);
    // Without the signature the URL is no credential at all: the token is asked for.
    const stripped = new URL(url);
    stripped.searchParams.delete("signature");
    expect((await open(stripped.toString())).status).toBe(401);
  });

  it("a file link is no 9P URL, and a 9P URL opens no file", async () => {
    const file = await post("/v1/shares/locked/links", { path: "through-a-url.txt" }, TOKEN);
    expect(file.status).toBe(200);
    const fileUrl = new URL(file.json.url as string);
    const asNine = new URL(gw.wsUrl("locked"));
    asNine.searchParams.set("expires", fileUrl.searchParams.get("expires")!);
    asNine.searchParams.set("access", "rw");
    asNine.searchParams.set("signature", fileUrl.searchParams.get("signature")!);
    const o = await open(asNine.toString());
    expect(o.status).toBe(403);
    const nine = new URL(await mint("locked", TOKEN));
    const asFile = new URL(`${gw.url}/v1/shares/locked/files/through-a-url.txt`);
    asFile.searchParams.set("expires", nine.searchParams.get("expires")!);
    asFile.searchParams.set("signature", nine.searchParams.get("signature")!);
    expect((await fetch(asFile)).status).toBe(403);
  });

  it("a read-only URL gets EROFS on every change, on a writable share, and reads", async () => {
    const r = await post("/v1/shares/locked/links", { kind: "9p", read_only: true }, TOKEN);
    expect(r.status).toBe(200);
    expect(r.json.read_only).toBe(true);
    const url = new URL(r.json.url as string);
    expect(url.searchParams.get("access")).toBe("ro");
    const o = await open(url.toString());
    expect(o.status, o.error).toBe(101);
    const c = await attach(o.ws!);
    // Reads work.
    await c.request({ type: "Twalk", fid: 0, newfid: 1, wnames: [enc.encode("through-a-url.txt")] });
    await c.request({ type: "Tlopen", fid: 1, flags: 0 });
    const got = await c.request({ type: "Tread", fid: 1, offset: 0n, count: 4096 });
    expect(dec.decode(got.data)).toBe("written through a signed 9P URL\n");
    await c.request({ type: "Tclunk", fid: 1 });
    // Every change is refused.
    await c.request({ type: "Twalk", fid: 0, newfid: 2, wnames: [] });
    await c.request({ type: "Twalk", fid: 0, newfid: 3, wnames: [enc.encode("through-a-url.txt")] });
    const tries: [string, Promise<unknown>][] = [
      ["lcreate", c.request({ type: "Tlcreate", fid: 2, name: "new.txt", flags: 1, mode: 0o644, gid: 0 })],
      ["mkdir", c.request({ type: "Tmkdir", dfid: 0, name: "dir", mode: 0o755, gid: 0 })],
      ["symlink", c.request({ type: "Tsymlink", fid: 0, name: "ln", symtgt: "x", gid: 0 })],
      ["renameat", c.request({ type: "Trenameat", olddirfid: 0, oldname: "through-a-url.txt", newdirfid: 0, newname: "moved.txt" })],
      ["unlinkat", c.request({ type: "Tunlinkat", dirfid: 0, name: "through-a-url.txt", flags: 0 })],
      ["lopen for write", c.request({ type: "Tlopen", fid: 3, flags: 1 })],
      [
        "setattr",
        c.request({ type: "Tsetattr", fid: 3, valid: 1 /* mode */, mode: 0o600, uid: 0, gid: 0, size: 0n, atime_sec: 0n, atime_nsec: 0n, mtime_sec: 0n, mtime_nsec: 0n }),
      ],
    ];
    for (const [what, p] of tries) expect(await errnoOf(p), what).toBe(ERRNO.EROFS);
    o.ws!.close(1000);
    // Nothing changed.
    const cat = await runEdge9p(["cat", "--token", TOKEN, `${gw.url}/v1/shares/locked/through-a-url.txt`]);
    expect(cat.stdout.toString()).toBe("written through a signed 9P URL\n");
    const ls = await runEdge9p(["ls", "--token", TOKEN, `${gw.url}/v1/shares/locked/`]);
    expect(ls.stdout.toString().split("\n").filter(Boolean).sort()).toEqual(["through-a-url.txt"]);
  });

  it("plain_9p = \"signed\" takes plain 9P only through a signed URL; plain_9p = false not even then", async () => {
    const token = await open(gw.wsUrl("vms"), [], { Authorization: `Bearer ${TOKEN}` });
    expect(token.status).toBe(400);
    expect(token.error).toMatch(/share vms takes plain 9P clients only through a signed 9P URL/);
    const signed = await open(await mint("vms", TOKEN));
    expect(signed.status, signed.error).toBe(101);
    const c = await attach(signed.ws!);
    await create(c, "vm.txt", "from a plain 9P client\n");
    signed.ws!.close(1000);
    const acked = await open(await mint("acked", TOKEN));
    expect(acked.status).toBe(400);
    expect(acked.error).toMatch(/share acked takes only clients that acknowledge what they read/);
    const ackedAck = await open(await mint("acked", TOKEN), ["9p.ack"]);
    expect(ackedAck.status, ackedAck.error).toBe(101);
    ackedAck.ws!.close(1000);
  });

  it("rotate-links revokes every 9P URL and closes the sessions opened through one; token sessions carry on", async () => {
    const url = await mint("twin", TWIN_TOKEN);
    const viaUrl = await open(url);
    expect(viaUrl.status, viaUrl.error).toBe(101);
    const closed = new Promise<{ code: number; reason: string }>((resolve) => viaUrl.ws!.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    await attach(viaUrl.ws!);
    const viaToken = await open(gw.wsUrl("twin"), ["9p.ack", "9p"], { Authorization: `Bearer ${TWIN_TOKEN}` });
    const tc = await attach(viaToken.ws!);

    const rot = await fetch(`${gw.url}/v1/shares/twin/links/rotate`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${OPERATOR_TOKEN}` },
      body: "{}",
    });
    expect(rot.status).toBe(200);
    expect(await closed).toEqual({ code: 4007, reason: "the share's signed URLs were revoked (links rotated): ask for a new one" });
    const again = await open(url);
    expect(again.status).toBe(403);
    expect(again.error).toBe("this 9P URL was revoked (the share's links were rotated): ask for a new one");
    // The token's session was not opened through a URL.
    expect((await tc.request({ type: "Twalk", fid: 0, newfid: 9, wnames: [] })).qids).toEqual([]);
    viaToken.ws!.close(1000);
  });

  it("checks the request: the kind, the scope's type, the expiry's range", async () => {
    for (const body of [{ kind: "9p", read_only: "yes" }, { kind: "9p", expires_in: 0 }, { kind: "9p", path: "a.txt" }, { kind: "ftp" }]) {
      const r = await post("/v1/shares/locked/links", body, TOKEN);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatch(/^links wants JSON/);
    }
  });
});
