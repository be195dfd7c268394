// What a hostile web page (or a DNS rebinding name) can do to a local
// gateway, tried against a real `wrangler dev` with real clients: curl with
// its own Host and Origin headers, a WebSocket with an Origin, the edge9p
// command for the operator's link rotation.

import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Remote } from "../../cli/remote.ts";
import { type LocalGateway, OPERATOR_TOKEN, startLocalGateway } from "../support/local-gateway.ts";
import { runEdge9p } from "../support/run-cli.ts";

const TOKEN = "hardening-test-token-0123456789";
let gw: LocalGateway;

function curl(args: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile("curl", ["-sS", "-w", "\n%{http_code}", ...args], (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl: ${stderr}`));
      const cut = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

/** Opens a 9P WebSocket with these headers; resolves with 101 or the refusal's status and body. */
function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["9p"], { headers });
    ws.once("open", () => {
      ws.close(1000);
      resolve({ status: 101, body: "" });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (b: Buffer) => (body += b.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once("error", reject);
  });
}

beforeAll(async () => {
  gw = await startLocalGateway({
    config: {
      shares: {
        dev: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "open" },
        ro: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "ro", read_only: true },
        locked: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "locked", token_hashes: [createHash("sha256").update(TOKEN).digest("hex")] },
      },
    },
  });
}, 120_000);

afterAll(async () => {
  await gw?.stop();
});

describe("a local gateway against hostile pages", () => {
  it("refuses a rebinding Host (curl -H 'Host: evil.example:PORT') with 421, and answers for 127.0.0.1 and localhost", async () => {
    const evil = await curl(["-H", `Host: evil.example:${gw.port}`, `${gw.url}/v1/shares/dev`]);
    expect(evil.status).toBe(421);
    expect(JSON.parse(evil.body)).toEqual({
      error: "this gateway does not answer for host evil.example: a local gateway answers for loopback addresses, localhost and EDGE9P.allowed_hosts",
    });
    const evilWs = await upgrade(gw.wsUrl("dev"), { Host: `evil.example:${gw.port}` });
    expect(evilWs.status).toBe(421);
    expect((await curl([`${gw.url}/v1/shares/dev`])).status).toBe(200);
    expect((await curl([`http://localhost:${gw.port}/v1/shares/dev`])).status).toBe(200);
  });

  it("refuses a WebSocket from another origin before the upgrade; a page of the gateway's own origin and programs without Origin get theirs", async () => {
    const evil = await upgrade(gw.wsUrl("dev"), { Origin: "https://evil.example" });
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).error).toMatch(/origin https:\/\/evil\.example are refused/);
    expect((await upgrade(gw.wsUrl("dev"), { Origin: gw.url })).status).toBe(101);
    expect((await upgrade(`ws://localhost:${gw.port}/v1/shares/dev/9p`, { Origin: `http://localhost:${gw.port}` })).status).toBe(101);
    // 127.0.0.1 and localhost are two origins: a page of one may not use the other.
    expect((await upgrade(gw.wsUrl("dev"), { Origin: `http://localhost:${gw.port}` })).status).toBe(403);
    expect((await upgrade(gw.wsUrl("dev"), {})).status).toBe(101);
  });

  it("refuses cross-site posts (text/plain, no preflight) to links and drain", async () => {
    for (const route of ["links", "drain"]) {
      const cross = await curl(["-H", "Origin: https://evil.example", "-H", "Content-Type: text/plain", "-d", '{"path":"x"}', `${gw.url}/v1/shares/dev/${route}`]);
      expect(cross.status, route).toBe(403);
      const plain = await curl(["-H", "Content-Type: text/plain", "-d", '{"path":"x"}', `${gw.url}/v1/shares/dev/${route}`]);
      expect(plain.status, route).toBe(415);
    }
  });

  it("lets only the operator drain, check and see figures, on an open and a read-only share", async () => {
    for (const share of ["dev", "ro"]) {
      const drain = await curl(["-X", "POST", "-H", "Content-Type: application/json", "-d", "{}", `${gw.url}/v1/shares/${share}/drain`]);
      expect(drain.status, share).toBe(401);
      expect((await curl([`${gw.url}/v1/shares/${share}/stats`])).status).toBe(401);
      const op = ["-H", `Authorization: Bearer ${OPERATOR_TOKEN}`];
      expect((await curl([...op, "-H", "Content-Type: application/json", "-d", "{}", `${gw.url}/v1/shares/${share}/drain`])).status).toBe(200);
      expect((await curl([...op, `${gw.url}/v1/shares/${share}/check`])).status).toBe(200);
    }
  });

  it("edge9p rotate-links revokes a share's signed links; without the operator token it says why", async () => {
    const r = await Remote.open(gw.wsUrl("locked"), TOKEN);
    await r.write("doc.txt", 0o644, (async function* () {
      yield new TextEncoder().encode("doc\n");
    })());
    r.close();
    const made = await curl(["-H", `Authorization: Bearer ${TOKEN}`, "-H", "Content-Type: application/json", "-d", '{"path":"doc.txt"}', `${gw.url}/v1/shares/locked/links`]);
    const { url } = JSON.parse(made.body) as { url: string };
    expect(await curl([url])).toEqual({ status: 200, body: "doc\n" });

    const refused = await runEdge9p(["rotate-links", `${gw.url}/v1/shares/locked`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `edge9p rotate-links: the gateway refused: HTTP 401 POST /v1/shares/locked/links/rotate needs the gateway's operator token (Authorization: Bearer)\n`,
    );
    expect((await curl([url])).status).toBe(200);

    const done = await runEdge9p(["rotate-links", "--operator-token", OPERATOR_TOKEN, `${gw.url}/v1/shares/locked`]);
    expect(done.stderr).toBe("");
    expect(done.code).toBe(0);
    expect(done.stdout.toString()).toMatch(/^share locked: signed links rotated at \d{4}-\d\d-\d\dT.*: every link made before answers 403\n$/);
    const old = await curl([url]);
    expect(old.status).toBe(403);
    expect(JSON.parse(old.body)).toEqual({ error: "this link was revoked (the share's links were rotated): ask for a new one" });
    expect((await runEdge9p(["rotate-links"])).code).toBe(2);
  });
});
