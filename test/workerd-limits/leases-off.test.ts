// A gateway with EDGE9P.leases = false (this project's wrangler.toml): a
// client that asks for leases is not answered a term, gets no lease text,
// and a lease text it sends anyway is refused (docs/leases.md: without the
// answer the client caches nothing).

import { describe, expect, it } from "vitest";
import { CLOSE, LEASES_HEADER } from "../../protocol/index.ts";
import { getattr } from "../workerd/support/fs.ts";
import { leaseMount } from "../workerd/support/leases.ts";

describe("leases off", () => {
  it("answers no term to a client that asks, sends it no lease text, and refuses its lease texts", async () => {
    const c = await leaseMount("main");
    expect(c.term).toBeNull();
    await getattr(c.client, "");
    expect(c.events.filter((e) => e.kind === "lease")).toEqual([]);
    c.ws.send(JSON.stringify({ lease: "release", q: ["1"] }));
    const closed = await c.closed;
    expect(closed.code).toBe(CLOSE.UNSUPPORTED);
    expect(closed.reason).toMatch(LEASES_HEADER);
  });
});
