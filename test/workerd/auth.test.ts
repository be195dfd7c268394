// Bearer tokens: refused before any WebSocket upgrade unless the request
// carries a token of that share, in the Authorization header or, as
// browsers must, as a WebSocket subprotocol.

import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { NOFID, clientOverWebSocket } from "../../protocol/index.ts";
import { createApp } from "../../worker/app.ts";

const TOKEN = "test-token-0123456789abcdef";
const get = (path: string, headers: Record<string, string> = {}) => exports.default.fetch(`http://gateway${path}`, { headers });
const ws = (share: string, headers: Record<string, string> = {}) =>
  get(`/v1/shares/${share}/9p`, { Upgrade: "websocket", "Sec-WebSocket-Protocol": "9p", ...headers });

describe("tokens", () => {
  it("refuses a missing token with 401 before the upgrade", async () => {
    const r = await ws("secret");
    expect(r.status).toBe(401);
    expect(r.webSocket).toBeNull();
    expect(r.headers.get("WWW-Authenticate")).toBe('Bearer realm="edge9p", share="secret"');
    expect(await r.json()).toEqual({ error: "share secret needs a token" });
    expect((await get("/v1/shares/secret")).status).toBe(401);
  });

  it("refuses a wrong token with 403, and a malformed one with 401", async () => {
    const wrong = await ws("secret", { Authorization: "Bearer wrong-token-0123456789abcdef" });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toEqual({ error: "the token does not open share secret" });
    expect((await ws("secret", { Authorization: "Bearer has spaces and !" })).status).toBe(401);
    expect((await ws("secret", { Authorization: "Basic dXNlcjpwYXNz" })).status).toBe(401);
  });

  it("refuses another share's token", async () => {
    // A token that opens nothing here: the share "main" has no tokens, so
    // any token is irrelevant there, but it is not one of secret's.
    const r = await ws("secret", { Authorization: "Bearer other-share-token-0123456789" });
    expect(r.status).toBe(403);
  });

  it("opens with the token in the Authorization header", async () => {
    const r = await ws("secret", { Authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(101);
    r.webSocket!.accept();
    r.webSocket!.close(1000);
    expect((await get("/v1/shares/secret", { Authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it("opens with the token as a browser's WebSocket subprotocol, answering only 9p", async () => {
    const r = await get("/v1/shares/secret/9p", { Upgrade: "websocket", "Sec-WebSocket-Protocol": `9p, edge9p-token.${TOKEN}` });
    expect(r.status).toBe(101);
    expect(r.headers.get("Sec-WebSocket-Protocol")).toBe("9p");
    const sock = r.webSocket!;
    const c = clientOverWebSocket(sock as unknown as Parameters<typeof clientOverWebSocket>[0]);
    sock.accept();
    await c.version(8192);
    await expect(c.request({ type: "Tattach", fid: 0, afid: NOFID, uname: "", aname: "", n_uname: 0 })).resolves.toMatchObject({
      type: "Rattach",
    });
    sock.close(1000);
  });

  it("leaves shares without tokens open on a gateway that is not deployed", async () => {
    expect((await ws("main")).status).toBe(101);
  });
});

describe("a deployed gateway", () => {
  const app = createApp();
  const share = { binding: "BUCKET", bucket: "edge9p-test", prefix: "x" };
  it("refuses a share without tokens, naming it, unless it is public", async () => {
    const bad = { ...env, EDGE9P: { deployed: true, shares: { open: share } } };
    const r = await app.fetch(new Request("http://gateway/v1/shares/open"), bad);
    expect(r.status).toBe(500);
    expect(((await r.json()) as { error: string }).error).toMatch(
      /EDGE9P\.shares\.open\.token_hashes: a deployed gateway refuses a share without tokens/,
    );
    const ok = { ...env, EDGE9P: { deployed: true, shares: { open: { ...share, public: true } } } };
    expect((await app.fetch(new Request("http://gateway/v1/shares/open"), ok)).status).toBe(200);
  });

  it("takes token hashes from the EDGE9P_TOKENS secret, and names what is wrong with it", async () => {
    const token = "secret-held-token-0123456789";
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const withSecret = (secret: string) => ({ ...env, EDGE9P: { deployed: true, shares: { open: share } }, EDGE9P_TOKENS: secret });
    const get = (e: object, headers: Record<string, string> = {}) => app.fetch(new Request("http://gateway/v1/shares/open", { headers }), e);
    const good = withSecret(JSON.stringify({ open: [digest] }));
    expect((await get(good)).status).toBe(401);
    expect((await get(good, { Authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(good, { Authorization: "Bearer another-token-0123456789" })).status).toBe(403);
    const errorOf = async (e: object) => ((await (await get(e)).json()) as { error: string }).error;
    expect(await errorOf(withSecret(JSON.stringify({ other: [digest] })))).toMatch(/EDGE9P_TOKENS: key 1 is not a share of EDGE9P\.shares/);
    expect(await errorOf(withSecret(JSON.stringify({ open: ["abc"] })))).toMatch(/EDGE9P_TOKENS\.open\.0: a SHA-256 digest in lower-case hex/);
    expect(await errorOf(withSecret("{open"))).toMatch(/EDGE9P_TOKENS: not valid JSON/);
  });
});

describe("operator routes", () => {
  const OPERATOR = "test-operator-token-0123456789abcdef";
  const call = (method: string, path: string, headers: Record<string, string> = {}) =>
    exports.default.fetch(`http://gateway${path}`, { method, headers: method === "POST" ? { "Content-Type": "application/json", ...headers } : headers, body: method === "POST" ? "{}" : undefined });
  const routes: [string, string][] = [
    ["POST", "drain"],
    ["GET", "check"],
    ["GET", "stats"],
    ["POST", "links/rotate"],
  ];

  it("need the operator token: 401 without, 403 with a share's token or any other, on every share", async () => {
    for (const [method, route] of routes) {
      // A read-only share and an open one: reading a share is no licence to cut its sessions off.
      for (const share of ["ro", "main", "secret"]) {
        const path = `/v1/shares/${share}/${route}`;
        const none = await call(method, path);
        expect(none.status, path).toBe(401);
        expect(none.headers.get("WWW-Authenticate")).toBe('Bearer realm="edge9p operator"');
        expect(await none.json()).toEqual({ error: `${method} ${path} needs the gateway's operator token (Authorization: Bearer)` });
        const shareToken = await call(method, path, { Authorization: `Bearer ${TOKEN}` });
        expect(shareToken.status, path).toBe(403);
        expect(await shareToken.json()).toEqual({ error: "that is not this gateway's operator token" });
      }
    }
    expect((await call("POST", "/v1/shares/nope/drain", { Authorization: `Bearer ${OPERATOR}` })).status).toBe(404);
  });

  it("answer with the operator token, on a read-only share with tokens too", async () => {
    for (const [method, route] of routes) {
      // "ops": a share of its own, so that a drain cuts no other test's session.
      for (const share of ["ops"]) {
        const r = await call(method, `/v1/shares/${share}/${route}`, { Authorization: `Bearer ${OPERATOR}` });
        expect(r.status, `${method} ${share}/${route}`).toBe(200);
      }
    }
  });

  it("are refused, saying how to configure one, on a gateway without an operator token", async () => {
    const bare = { ...env, EDGE9P: { ...(env as unknown as { EDGE9P: object }).EDGE9P, operator_token_hashes: [] } };
    for (const [method, route] of routes) {
      const r = await createApp().fetch(
        new Request(`http://gateway/v1/shares/main/${route}`, { method, headers: { "Content-Type": "application/json", Authorization: `Bearer ${OPERATOR}` }, body: method === "POST" ? "{}" : undefined }),
        bare,
      );
      expect(r.status).toBe(403);
      expect(await r.json()).toEqual({
        error: "this gateway has no operator token: add a SHA-256 (npx edge9p token) to EDGE9P.operator_token_hashes or the EDGE9P_OPERATOR_TOKENS secret",
      });
    }
  });

  it("take operator token hashes from the EDGE9P_OPERATOR_TOKENS secret", async () => {
    const token = "secret-operator-token-0123456789";
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    const e = { ...env, EDGE9P: { ...(env as unknown as { EDGE9P: object }).EDGE9P, operator_token_hashes: [] }, EDGE9P_OPERATOR_TOKENS: JSON.stringify([digest]) };
    const stats = (t: string) => createApp().fetch(new Request("http://gateway/v1/shares/main/stats", { headers: { Authorization: `Bearer ${t}` } }), e);
    expect((await stats(token)).status).toBe(200);
    expect((await stats(OPERATOR)).status).toBe(403);
  });
});
