// Who may drive the gateway from a browser: a web page of another origin
// must not open a share's socket or change anything over HTTP (cross-site
// WebSocket hijacking), and a name that rebinds to the gateway's address
// must not reach it (DNS rebinding). Programs (the bridge, the CLI, curl)
// send no Origin and are not affected.

import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../worker/app.ts";
import { upgrade } from "./support/gateway.ts";

const OPERATOR = { Authorization: "Bearer test-operator-token-0123456789abcdef" };
const EVIL = "https://evil.example";

const post = (path: string, headers: Record<string, string>, body = "{}") =>
  exports.default.fetch(`http://gateway${path}`, { method: "POST", headers, body });

async function errorOf(r: Response): Promise<string> {
  return ((await r.json()) as { error: string }).error;
}

describe("origins", () => {
  it("refuses a 9P upgrade from another origin with 403 before the upgrade", async () => {
    const r = await upgrade("main", { Origin: EVIL });
    expect(r.status).toBe(403);
    expect(r.webSocket).toBeNull();
    expect(await errorOf(r)).toBe(
      "requests from origin https://evil.example are refused: it is not this gateway's origin or one of EDGE9P.allowed_origins",
    );
    // "null" is what sandboxed frames and file: pages send.
    expect((await upgrade("main", { Origin: "null" })).status).toBe(403);
  });

  it("accepts an upgrade from the gateway's own origin, from an allowed one, and with no Origin", async () => {
    for (const headers of [{ Origin: "http://gateway" }, { Origin: "https://files.example.com" }, {}] as Record<string, string>[]) {
      const r = await upgrade("main", headers);
      expect(r.status, JSON.stringify(headers)).toBe(101);
      r.webSocket!.accept();
      r.webSocket!.close(1000);
    }
    // Same host, other scheme or port: another origin.
    expect((await upgrade("main", { Origin: "https://gateway" })).status).toBe(403);
    expect((await upgrade("main", { Origin: "http://gateway:8080" })).status).toBe(403);
  });

  it("refuses a cross-origin POST of links, drain and rotate, whatever its content type", async () => {
    for (const path of ["/v1/shares/main/links", "/v1/shares/main/drain", "/v1/shares/main/links/rotate"]) {
      for (const type of ["text/plain", "application/json"]) {
        const r = await post(path, { Origin: EVIL, "Content-Type": type, ...OPERATOR }, JSON.stringify({ path: "x.txt" }));
        expect(r.status, `${path} ${type}`).toBe(403);
        expect(await errorOf(r)).toMatch(/origin https:\/\/evil\.example are refused/);
      }
    }
  });

  it("takes POST bodies only as application/json (415 otherwise), so no form or text/plain post skips a preflight", async () => {
    for (const path of ["/v1/shares/main/links", "/v1/shares/main/drain"]) {
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]) {
        const headers: Record<string, string> = { ...OPERATOR };
        if (type) headers["Content-Type"] = type;
        const r = await post(path, headers, JSON.stringify({ path: "x.txt" }));
        expect(r.status, `${path} ${type}`).toBe(415);
        expect(await errorOf(r)).toBe(`POST ${path} takes Content-Type: application/json`);
      }
    }
    const ok = await post("/v1/shares/main/links", { "Content-Type": "application/json; charset=utf-8", Origin: "http://gateway" }, JSON.stringify({ path: "x.txt" }));
    expect(ok.status).toBe(200);
  });

  it("leaves reads from other origins alone (the browser's CORS rules keep their answers from the page)", async () => {
    const r = await exports.default.fetch("http://gateway/v1/shares/main", { headers: { Origin: EVIL } });
    expect(r.status).toBe(200);
    expect(r.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("hosts", () => {
  it("refuses a Host that is not loopback, localhost or in allowed_hosts with 421 (DNS rebinding)", async () => {
    for (const host of ["evil.example:8787", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "gateway.evil.example", "10.0.0.1:8787"]) {
      for (const path of ["/v1/shares/main", "/v1/shares/main/9p", "/v1/shares/main/files/x.txt", "/v1/shares", "/healthz"]) {
        const r = await exports.default.fetch(`http://${host}${path}`, { headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "9p" } });
        expect(r.status, `${host}${path}`).toBe(421);
        expect(r.webSocket).toBeNull();
        expect(await errorOf(r)).toBe(
          `this gateway does not answer for host ${host.split(":")[0]}: a local gateway answers for loopback addresses, localhost and EDGE9P.allowed_hosts`,
        );
      }
    }
    for (const host of ["127.0.0.1:8787", "localhost:8787", "LOCALHOST", "127.1.2.3", "[::1]:8787", "gateway"]) {
      expect((await exports.default.fetch(`http://${host}/v1/shares/main`)).status, host).toBe(200);
    }
  });

  it("takes the gateway's own origin from the checked Host only: a rebinding name never counts as same-origin", async () => {
    const r = await exports.default.fetch("http://evil.example:8787/v1/shares/main/9p", {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "9p", Origin: "http://evil.example:8787" },
    });
    expect(r.status).toBe(421);
  });

  it("on a deployed gateway: any Host the platform routes here without allowed_hosts or base_url, only those with them", async () => {
    const app = createApp();
    const share = { binding: "BUCKET", bucket: "edge9p-test", prefix: "deployed-hosts", public: true };
    const at = (config: object, host: string) => app.fetch(new Request(`https://${host}/v1/shares/open`), { ...env, EDGE9P: { deployed: true, shares: { open: share }, ...config } });
    expect((await at({}, "edge9p.acct.workers.dev")).status).toBe(200);
    expect((await at({}, "files.example.com")).status).toBe(200);
    // Loopback is not special on a deployed gateway.
    const named = { allowed_hosts: ["files.example.com"] };
    expect((await at(named, "files.example.com")).status).toBe(200);
    expect((await at(named, "FILES.example.com")).status).toBe(200);
    const refused = await at(named, "edge9p.acct.workers.dev");
    expect(refused.status).toBe(421);
    expect(await errorOf(refused)).toBe("this gateway does not answer for host edge9p.acct.workers.dev: a deployed gateway answers for EDGE9P.allowed_hosts and base_url's host");
    expect((await at(named, "localhost")).status).toBe(421);
    const based = { base_url: "https://files.example.com" };
    expect((await at(based, "files.example.com")).status).toBe(200);
    expect((await at(based, "other.example.com")).status).toBe(421);
    // base_url's origin is the gateway's own, also behind a proxy that sends another Host.
    const proxied = { base_url: "https://files.example.com", allowed_hosts: ["edge9p.acct.workers.dev"] };
    const viaProxy = await app.fetch(
      new Request("https://edge9p.acct.workers.dev/v1/shares/open/links", { method: "POST", headers: { Origin: "https://files.example.com", "Content-Type": "application/json" }, body: '{"path":"a.txt"}' }),
      { ...env, EDGE9P: { deployed: true, shares: { open: share }, ...proxied } },
    );
    expect(viaProxy.status).toBe(200);
  });
});
