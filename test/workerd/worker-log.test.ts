// The Worker's own log line (worker/app.ts onError: a route that threw) is
// printed at EDGE9P.log's level, read from the env the Worker was called
// with: "off" prints nothing, "error" and "info" print it.

import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../worker/app.ts";

/** The test env with EDGE9P.log set (a new object: the parsed configuration is cached per env). */
function envWith(log: unknown): Record<string, unknown> {
  const e = env as unknown as Record<string, unknown>;
  return { ...e, EDGE9P: { ...(e.EDGE9P as object), log } };
}

/** Calls a route that throws, through the Worker's app, and returns what console.error got. */
async function boom(e: Record<string, unknown>): Promise<{ status: number; lines: string[] }> {
  const app = createApp();
  app.get("/boom", () => {
    throw new Error("kaboom");
  });
  const lines: string[] = [];
  const spy = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(" ")));
  const spyLog = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(" ")));
  try {
    const res = await app.fetch(new Request("http://gateway/boom"), e);
    await res.text();
    return { status: res.status, lines };
  } finally {
    spy.mockRestore();
    spyLog.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe("the Worker's error log", () => {
  it('prints nothing with log = "off"', async () => {
    const r = await boom(envWith("off"));
    expect(r.status).toBe(500);
    expect(r.lines).toEqual([]);
  });

  it('prints the error with log = "error" and with "info"', async () => {
    for (const level of ["error", "info"]) {
      const r = await boom(envWith(level));
      expect(r.status).toBe(500);
      expect(r.lines, `log = "${level}"`).toHaveLength(1);
      expect(r.lines[0]).toMatch(/^worker: Error: kaboom/);
    }
  });
});
