// GET /v1/shares/:share/files/<path>: files over plain HTTP with Range,
// served by the share's object, so unpublished writes read the same.

import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { BUCKET, bytes, diff, mount, noise, put, walk } from "./support/gateway.ts";

const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
  exports.default.fetch(`http://gateway${path}`, { headers, method });

async function body(r: Response): Promise<Uint8Array> {
  return new Uint8Array(await r.arrayBuffer());
}

const data = noise(300_000, 7);

// Put before anything lists the share's root (a listing is trusted for 10 s).
beforeAll(async () => {
  await put("main", "files/blob.bin", data);
  await put("main", "files/note.txt", "hello\n");
  await put("main", "errs/small.txt", "0123456789");
  await put("secret", "s.txt", "secret\n");
  for (const name of ["a.txt", "b.png", "c.pdf", "d.mp4", "e.mp3", "f.js", "g.md", "h.xml", "noext"]) await put("main", `kinds/${name}`, name);
  await put("main", "names/Ünïcode 'report' (1).html", "<p>hi</p>");
  await put("main", 'names/quo"te\\.txt', "q");
});

describe("files route", () => {
  it("serves an object put into R2, whole and by range, with its length, type and ETag", async () => {

    const whole = await get("/v1/shares/main/files/files/blob.bin");
    expect(whole.status).toBe(200);
    expect(whole.headers.get("Content-Length")).toBe("300000");
    expect(whole.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(whole.headers.get("Accept-Ranges")).toBe("bytes");
    expect(diff(await body(whole), data)).toBe("equal");

    const part = await get("/v1/shares/main/files/files/blob.bin", { Range: "bytes=100-199" });
    expect(part.status).toBe(206);
    expect(part.headers.get("Content-Range")).toBe("bytes 100-199/300000");
    expect(diff(await body(part), data.subarray(100, 200))).toBe("equal");

    const tail = await get("/v1/shares/main/files/files/blob.bin", { Range: "bytes=-10" });
    expect(tail.headers.get("Content-Range")).toBe("bytes 299990-299999/300000");
    expect(diff(await body(tail), data.subarray(299_990))).toBe("equal");

    const open = await get("/v1/shares/main/files/files/blob.bin", { Range: "bytes=299000-" });
    expect((await body(open)).byteLength).toBe(1000);

    const text = await get("/v1/shares/main/files/files/note.txt");
    expect(text.headers.get("Content-Type")).toBe("text/plain; charset=utf-8");
    expect(await text.text()).toBe("hello\n");
    const etag = text.headers.get("ETag")!;
    expect(etag).toMatch(/^"[0-9a-z]+-[0-9a-z]+"$/);
    expect((await get("/v1/shares/main/files/files/note.txt", { "If-None-Match": etag })).status).toBe(304);

    const head = await get("/v1/shares/main/files/files/blob.bin", {}, "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe("300000");
  });

  it("serves a file written through 9P and not yet published, and a new ETag once it changes", async () => {
    const c = await mount();
    const d = await walk(c.client, "");
    await c.client.request({ type: "Tmkdir", dfid: d.fid, name: "fresh", mode: 0o40755, gid: 0 });
    const { fid } = await walk(c.client, "fresh");
    await c.client.request({ type: "Tlcreate", fid, name: "w.bin", flags: 1, mode: 0o100644, gid: 0 });
    const written = noise(5000, 3);
    await c.client.request({ type: "Twrite", fid, offset: 0n, data: written });
    // Not closed: nothing is in R2 yet.
    expect(await BUCKET.head("main/fresh/w.bin")).toBeNull();
    const r = await get("/v1/shares/main/files/fresh/w.bin", { Range: "bytes=100-199" });
    expect(r.status).toBe(206);
    expect(diff(await body(r), written.subarray(100, 200))).toBe("equal");
    const before = r.headers.get("ETag");
    await c.client.request({ type: "Twrite", fid, offset: 150n, data: bytes("changed") });
    const again = await get("/v1/shares/main/files/fresh/w.bin", { Range: "bytes=150-156" });
    expect(await again.text()).toBe("changed");
    expect(again.headers.get("ETag")).not.toBe(before);
    await c.client.request({ type: "Tclunk", fid });
    c.ws.close();
  });

  it("answers 404, 400 and 416 with the reason, and asks a token of a share that has them", async () => {
    const missing = await get("/v1/shares/main/files/errs/nope.txt");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no file "errs/nope.txt" in this share' });
    const dir = await get("/v1/shares/main/files/errs");
    expect(dir.status).toBe(400);
    expect(await dir.json()).toEqual({ error: '"errs" is a directory' });
    // ".." never arrives (URLs resolve dot segments, %2E%2E too); a '/' inside a name does.
    const slash = await get("/v1/shares/main/files/errs%2Fsmall.txt");
    expect(slash.status).toBe(400);
    expect(await slash.json()).toEqual({ error: '"errs/small.txt" is not a file name' });
    const nul = await get("/v1/shares/main/files/errs/a%00b");
    expect(nul.status).toBe(400);
    const past = await get("/v1/shares/main/files/errs/small.txt", { Range: "bytes=10-20" });
    expect(past.status).toBe(416);
    expect(past.headers.get("Content-Range")).toBe("bytes */10");
    // Several ranges are not served: the whole file comes back (RFC 9110 allows it).
    const multi = await get("/v1/shares/main/files/errs/small.txt", { Range: "bytes=0-1,4-5" });
    expect(multi.status).toBe(200);
    expect(await multi.text()).toBe("0123456789");

    expect((await get("/v1/shares/secret/files/s.txt")).status).toBe(401);
    const ok = await get("/v1/shares/secret/files/s.txt", { Authorization: "Bearer test-token-0123456789abcdef" });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("secret\n");
  });

  it("opens a file through a signed link without the token, until it expires; a link opens only its file", async () => {
    const TOKEN = { Authorization: "Bearer test-token-0123456789abcdef" };
    const ask = (body: unknown, headers: Record<string, string> = TOKEN) =>
      exports.default.fetch("http://gateway/v1/shares/secret/links", { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });

    const made = await ask({ path: "s.txt", expires_in: 60 });
    expect(made.status).toBe(200);
    const { url, expires } = (await made.json()) as { url: string; expires: string };
    const u = new URL(url);
    expect(u.pathname).toBe("/v1/shares/secret/files/s.txt");
    expect(Number(u.searchParams.get("expires")) * 1000).toBe(Date.parse(expires));
    expect(Date.parse(expires) - Date.now()).toBeGreaterThan(50_000);
    const viaLink = await get(`${u.pathname}${u.search}`);
    expect(viaLink.status).toBe(200);
    expect(await viaLink.text()).toBe("secret\n");
    const ranged = await get(`${u.pathname}${u.search}`, { Range: "bytes=1-3" });
    expect(await ranged.text()).toBe("ecr");

    // The same signature on another path, a changed expiry, a forged signature: 403.
    const sig = u.searchParams.get("signature")!;
    const other = await get(`/v1/shares/secret/files/other.txt${u.search}`);
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: "this link's signature is not valid for this file" });
    const later = new URL(u);
    later.searchParams.set("expires", String(Number(u.searchParams.get("expires")) + 3600));
    expect((await get(`${later.pathname}${later.search}`)).status).toBe(403);
    expect((await get(`${u.pathname}?expires=${u.searchParams.get("expires")}&signature=${"0".repeat(64)}`)).status).toBe(403);
    expect((await get(`${u.pathname}?expires=soon&signature=${sig}`)).status).toBe(403);
    // Another share's link does not open this share's file of the same path.
    const mainLink = (await (await exports.default.fetch("http://gateway/v1/shares/main/links", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: "s.txt" }) })).json()) as { url: string };
    expect((await get(`/v1/shares/secret/files/s.txt${new URL(mainLink.url).search}`)).status).toBe(403);

    // Expired: signed for a past time (1 s, then waited out).
    const short = (await (await ask({ path: "s.txt", expires_in: 1 })).json()) as { url: string };
    await new Promise((r) => setTimeout(r, 2100));
    const old = await get(new URL(short.url).pathname + new URL(short.url).search);
    expect(old.status).toBe(403);
    expect(await old.json()).toEqual({ error: "this link has expired: ask for a new one" });

    // Asking needs the token; bad requests say what is wrong.
    expect((await ask({ path: "s.txt" }, {})).status).toBe(401);
    const bad = await ask({ path: "s.txt", expires_in: 10 ** 9 });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/expires_in/);
    expect((await ask({ path: "../x" })).status).toBe(400);
    expect((await ask({ path: "s.txt", typo: 1 })).status).toBe(400);
    // A name needing percent-encoding signs and opens the same.
    await put("secret", "a dir/ü b.txt", "odd\n");
    const odd = (await (await ask({ path: "a dir/ü b.txt" })).json()) as { url: string };
    expect(new URL(odd.url).pathname).toBe("/v1/shares/secret/files/a%20dir/%C3%BC%20b.txt");
    const oddRes = await get(new URL(odd.url).pathname + new URL(odd.url).search);
    expect(oddRes.status).toBe(200);
    expect(await oddRes.text()).toBe("odd\n");
  });
});

describe("files route: active content and bad input", () => {
  const OPERATOR = { Authorization: "Bearer test-operator-token-0123456789abcdef" };

  /** Uploads a file through 9P, as the share browser and the CLI do. */
  async function upload(path: string, content: string) {
    const c = await mount();
    const [dir, name] = [path.slice(0, path.lastIndexOf("/")), path.slice(path.lastIndexOf("/") + 1)];
    const { fid } = await walk(c.client, dir);
    await c.client.request({ type: "Tlcreate", fid, name, flags: 1, mode: 0o100644, gid: 0 });
    await c.client.request({ type: "Twrite", fid, offset: 0n, data: bytes(content) });
    await c.client.request({ type: "Tclunk", fid });
    c.ws.close();
  }

  it("serves an uploaded .html and .svg as attachments, with nosniff and a sandbox CSP", async () => {
    const c = await mount();
    const root = await walk(c.client, "");
    await c.client.request({ type: "Tmkdir", dfid: root.fid, name: "active", mode: 0o40755, gid: 0 });
    c.ws.close();
    await upload("active/page.html", "<script>alert(sessionStorage.length)</script>");
    await upload("active/pic.svg", '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    for (const [name, type] of [
      ["page.html", "text/html; charset=utf-8"],
      ["pic.svg", "image/svg+xml"],
    ]) {
      for (const method of ["GET", "HEAD"]) {
        const r = await get(`/v1/shares/main/files/active/${name}`, {}, method);
        expect(r.status).toBe(200);
        expect(r.headers.get("Content-Type")).toBe(type);
        expect(r.headers.get("Content-Disposition")).toBe(`attachment; filename="${name}"`);
        expect(r.headers.get("X-Content-Type-Options")).toBe("nosniff");
        expect(r.headers.get("Content-Security-Policy")).toBe("sandbox");
      }
    }
  });

  it("serves only passive types inline; every answer of the route carries nosniff and the sandbox CSP", async () => {
    const disposition = async (name: string) => (await get(`/v1/shares/main/files/kinds/${name}`)).headers.get("Content-Disposition");
    for (const name of ["a.txt", "b.png", "c.pdf", "d.mp4", "e.mp3"]) expect(await disposition(name), name).toBe(`inline; filename="${name}"`);
    for (const name of ["f.js", "g.md", "h.xml", "noext"]) expect(await disposition(name), name).toBe(`attachment; filename="${name}"`);
    for (const [path, status] of [
      ["kinds/missing.html", 404],
      ["kinds", 400],
    ] as const) {
      const r = await get(`/v1/shares/main/files/${path}`);
      expect(r.status).toBe(status);
      expect(r.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(r.headers.get("Content-Security-Policy")).toBe("sandbox");
    }
    const unauthorized = await get("/v1/shares/secret/files/s.txt");
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("Content-Security-Policy")).toBe("sandbox");
  });

  it("names a non-ASCII file with filename*= (RFC 6266, RFC 5987) and an ASCII fallback", async () => {
    const r = await get(`/v1/shares/main/files/names/${encodeURIComponent("Ünïcode 'report' (1).html")}`);
    expect(r.status).toBe(200);
    expect(r.headers.get("Content-Disposition")).toBe(
      "attachment; filename=\"_n_code 'report' (1).html\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20%27report%27%20%281%29.html",
    );
    const q = await get(`/v1/shares/main/files/names/${encodeURIComponent('quo"te\\.txt')}`);
    expect(q.headers.get("Content-Disposition")).toBe("inline; filename=\"quo_te_.txt\"; filename*=UTF-8''quo%22te%5C.txt");
  });

  it("answers a bad percent-encoding with 400 and the reason", async () => {
    for (const path of ["errs/nope/%E0%A4%A", "%E0%A4%A", "errs/%FF.txt", "nope/%C3"]) {
      const r = await get(`/v1/shares/main/files/${path}`);
      expect(r.status, path).toBe(400);
      expect(await r.json()).toEqual({ error: "the file's path is not valid percent-encoded UTF-8 (RFC 3986 section 2.1)" });
    }
  });

  it("revokes every signed link of a share when the operator rotates its link key", async () => {
    const TOKEN = { Authorization: "Bearer test-token-0123456789abcdef" };
    const ask = async () => {
      const r = await exports.default.fetch("http://gateway/v1/shares/secret/links", { method: "POST", headers: { "Content-Type": "application/json", ...TOKEN }, body: '{"path":"s.txt"}' });
      const u = new URL(((await r.json()) as { url: string }).url);
      return `${u.pathname}${u.search}`;
    };
    const rotate = (headers: Record<string, string>) => exports.default.fetch("http://gateway/v1/shares/secret/links/rotate", { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: "{}" });
    const old = await ask();
    expect((await get(old)).status).toBe(200);
    // The share's token is not enough to rotate.
    expect((await rotate(TOKEN)).status).toBe(403);
    const rotated = await rotate(OPERATOR);
    expect(rotated.status).toBe(200);
    expect(await rotated.json()).toMatchObject({ share: "secret", rotated: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const refused = await get(old);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: "this link was revoked (the share's links were rotated): ask for a new one" });
    const fresh = await ask();
    expect(await (await get(fresh)).text()).toBe("secret\n");
    // A second rotation revokes the links of the first key too, and still says why.
    expect((await rotate(OPERATOR)).status).toBe(200);
    expect(await (await get(fresh)).json()).toEqual({ error: "this link was revoked (the share's links were rotated): ask for a new one" });
    expect(await (await get(old)).json()).toEqual({ error: "this link was revoked (the share's links were rotated): ask for a new one" });
  });

  it("builds link URLs from base_url where one is set, not from the request's Host", async () => {
    const e = { ...env, EDGE9P: { ...(env as unknown as { EDGE9P: object }).EDGE9P, base_url: "https://files.example.com" } };
    const r = await createApp().fetch(
      new Request("http://localhost:8787/v1/shares/main/links", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"path":"files/note.txt"}' }),
      e,
    );
    expect(r.status).toBe(200);
    const { url } = (await r.json()) as { url: string };
    expect(url).toMatch(/^https:\/\/files\.example\.com\/v1\/shares\/main\/files\/files\/note\.txt\?expires=\d+&signature=[0-9a-f]{64}$/);
  });
});
