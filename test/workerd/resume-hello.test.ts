// A resumed connection opens with the hello (protocol/resume.ts). workerd
// may hand the object the socket's first binary message before its first
// text one, so requests that reach it before the hello wait for it, in the
// order they came, and a bounded number of them: a client that never says
// hello cannot make the object hold requests without end.

import { describe, expect, it } from "vitest";
import { CLOSE, encode } from "../../protocol/index.ts";
import { HELLO, resumable, resume } from "./support/gateway.ts";

/** What the share's config says (test/workerd/wrangler.toml sets no max_inflight). */
const MAX_INFLIGHT = 1024;

describe("a resumed connection's hello", () => {
  it("lets requests that reached the object before it run after it, in the order they came", async () => {
    const a = await resumable();
    a.ws.close(4001, "dropped");
    const b = await resume(a.token, "main", false);
    // A walk, then a request on the fid it makes: the second fails unless the first ran first.
    const first = b.client.request({ type: "Twalk", fid: 0, newfid: 5, wnames: [] });
    const second = b.client.request({ type: "Tgetattr", fid: 5, request_mask: 0x7ffn });
    await new Promise((r) => setTimeout(r, 50));
    b.ws.send(HELLO);
    expect((await first).type).toBe("Rwalk");
    expect((await second).qid.type).toBe(0x80);
    b.ws.close(1000);
  });

  it("drops requests that came before a hello that never came when their socket goes, and the next resume works", async () => {
    const a = await resumable();
    a.ws.close(4001, "dropped");
    const b = await resume(a.token, "main", false);
    // A create that must not run: its socket goes before the hello.
    void b.client
      .request({ type: "Twalk", fid: 0, newfid: 7, wnames: [] })
      .catch(() => {});
    void b.client.request({ type: "Tlcreate", fid: 7, name: "never.txt", flags: 0o101, mode: 0o644, gid: 0 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    b.ws.close(4001, "dropped again");
    await b.closed;
    const c = await resume(a.token);
    const missing = await c.client.request({ type: "Twalk", fid: 0, newfid: 8, wnames: ["never.txt"] }).catch((e: Error) => e);
    expect(String(missing)).toMatch(/ENOENT|No such file/);
    // fid 7 was never made: the walk before the hello did not run either.
    const seven = await c.client.request({ type: "Tgetattr", fid: 7, request_mask: 0x7ffn }).catch((e: Error) => e);
    expect(String(seven)).toMatch(/Bad file descriptor/);
    c.ws.close(1000);
  });

  it("closes with 1002 once more than max_inflight requests came before it", async () => {
    const a = await resumable();
    a.ws.close(4001, "dropped");
    const b = await resume(a.token, "main", false);
    for (let tag = 0; tag <= MAX_INFLIGHT; tag++) {
      b.ws.send(encode({ type: "Tgetattr", tag, fid: 0, request_mask: 0x7ffn }, "9P2000.L"));
    }
    const closed = await b.closed;
    expect(closed.code).toBe(CLOSE.PROTOCOL);
    expect(closed.reason).toMatch(/hello must come before any request \(1024 came first\)/);
  });
});
