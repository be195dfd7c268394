// The protocol client's own bookkeeping (tags, flush, errors), against a
// peer scripted in the test. The client against the real gateway is tested
// in the workerd and bridge suites.

import { describe, expect, it } from "vitest";
import { Client, type Message, type MessageInit, P9Error, decode, encode } from "../../protocol/index.ts";

function pair() {
  const sent: Message[] = [];
  const client = new Client({ send: (b) => sent.push(decode(b, client.dialect)), close: () => {} });
  const reply = (m: MessageInit) => client.receive(encode(m, client.dialect));
  return { client, sent, reply };
}

describe("Client", () => {
  it("negotiates, then runs many requests at once and matches replies by tag", async () => {
    const { client, sent, reply } = pair();
    const v = client.version(1 << 20);
    expect(sent[0]).toMatchObject({ type: "Tversion", tag: 0xffff, msize: 1 << 20 });
    reply({ type: "Rversion", tag: 0xffff, msize: 65536, version: "9P2000.L" });
    await expect(v).resolves.toEqual({ msize: 65536, version: "9P2000.L" });
    expect(client.msize).toBe(65536);

    const reads = [0, 1, 2].map((i) => client.request({ type: "Tread", fid: 1, offset: BigInt(i), count: 10 }));
    const tags = sent.slice(1).map((m) => m.tag);
    expect(new Set(tags).size).toBe(3);
    expect(client.inFlight).toBe(3);
    // Answer in reverse order.
    for (const [i, tag] of [...tags.entries()].reverse()) {
      reply({ type: "Rread", tag, data: new Uint8Array([i]) });
    }
    const got = await Promise.all(reads);
    expect(got.map((r) => r.data[0])).toEqual([0, 1, 2]);
    expect(client.inFlight).toBe(0);
  });

  it("turns Rlerror into a P9Error carrying the errno", async () => {
    const { client, sent, reply } = pair();
    const p = client.request({ type: "Twalk", fid: 0, newfid: 1, wnames: ["nope"] });
    reply({ type: "Rlerror", tag: sent[0]!.tag, ecode: 2 });
    await expect(p).rejects.toMatchObject({ name: "P9Error", errno: 2, code: "ENOENT" });
  });

  it("rejects a reply of the wrong type with EPROTO", async () => {
    const { client, sent, reply } = pair();
    const p = client.request({ type: "Tclunk", fid: 3 });
    reply({ type: "Rflush", tag: sent[0]!.tag });
    await expect(p).rejects.toMatchObject({ errno: 71 });
  });

  it("flushes an aborted request: rejects it, and holds its tag until Rflush", async () => {
    const { client, sent, reply } = pair();
    const ac = new AbortController();
    const p = client.request({ type: "Tread", fid: 1, offset: 0n, count: 1 }, { signal: ac.signal });
    ac.abort(new Error("interrupted"));
    const flush = sent[1]!;
    expect(flush).toMatchObject({ type: "Tflush", oldtag: sent[0]!.tag });
    // A new request must not reuse the flushed tag before Rflush.
    void client.request({ type: "Tclunk", fid: 9 });
    expect(sent[2]!.tag).not.toBe(sent[0]!.tag);
    reply({ type: "Rflush", tag: flush.tag });
    await expect(p).rejects.toThrow("interrupted");
  });

  it("delivers the reply that arrives before Rflush (flush(5))", async () => {
    const { client, sent, reply } = pair();
    const ac = new AbortController();
    const p = client.request({ type: "Tread", fid: 1, offset: 0n, count: 1 }, { signal: ac.signal });
    ac.abort();
    reply({ type: "Rread", tag: sent[0]!.tag, data: new Uint8Array([7]) });
    reply({ type: "Rflush", tag: sent[1]!.tag });
    await expect(p).resolves.toMatchObject({ type: "Rread" });
  });

  it("fails every pending request when the transport goes away", async () => {
    const { client } = pair();
    const a = client.request({ type: "Tclunk", fid: 1 });
    const b = client.request({ type: "Tclunk", fid: 2 });
    client.fail(new Error("socket closed"));
    await expect(a).rejects.toThrow("socket closed");
    await expect(b).rejects.toThrow("socket closed");
    await expect(client.request({ type: "Tclunk", fid: 3 })).rejects.toThrow("socket closed");
  });

  it("refuses a server that answers version unknown", async () => {
    const { client, reply } = pair();
    const v = client.version(8192, "9P2000.L");
    reply({ type: "Rversion", tag: 0xffff, msize: 8192, version: "unknown" });
    await expect(v).rejects.toBeInstanceOf(P9Error);
  });

  it("recycles tags without ever using NOTAG", async () => {
    const { client, sent, reply } = pair();
    for (let i = 0; i < 70000; i++) {
      const p = client.request({ type: "Tclunk", fid: i });
      reply({ type: "Rclunk", tag: sent[i]!.tag });
      await p;
    }
    expect(sent.some((m) => m.tag === 0xffff)).toBe(false);
  });
});
