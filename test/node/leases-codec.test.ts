// The lease messages' codec (protocol/leases.ts): what parses, what is refused.
import { describe, expect, it } from "vitest";
import { LEASE_MAX_NAMED, isLeaseText, leaseText, parseLease, type LeaseMessage } from "../../protocol/index.ts";

describe("lease messages", () => {
  it("round-trips every kind", () => {
    const all: LeaseMessage[] = [
      { lease: "grant", tag: 3, q: ["1", "18446744073709551615"] },
      { lease: "recall", n: 7, q: ["40"] },
      { lease: "recall", n: 8, all: true },
      { lease: "ack", n: 7 },
      { lease: "release", q: [] },
    ];
    for (const m of all) {
      const t = leaseText(m);
      expect(isLeaseText(t)).toBe(true);
      expect(parseLease(t)).toEqual(m);
    }
  });

  it("refuses what is not one, with the reason", () => {
    expect(() => parseLease("mark 0123456789abcdef")).toThrow(/not a lease message/);
    expect(() => parseLease('{"lease":"grant"')).toThrow(/not JSON/);
    expect(() => parseLease('{"lease":"steal","q":[]}')).toThrow(/unknown kind/);
    expect(() => parseLease('{"lease":"grant","tag":70000,"q":[]}')).toThrow(/grant needs/);
    expect(() => parseLease('{"lease":"recall","n":-1,"q":[]}')).toThrow(/recall needs n/);
    expect(() => parseLease('{"lease":"recall","n":1}')).toThrow(/q or all/);
    expect(() => parseLease('{"lease":"ack","n":1.5}')).toThrow(/ack needs n/);
    // Inode numbers are decimal strings: no signs, no leading zeros, no numbers.
    expect(() => parseLease('{"lease":"release","q":["-1"]}')).toThrow(/release needs q/);
    expect(() => parseLease('{"lease":"release","q":["012"]}')).toThrow(/release needs q/);
    expect(() => parseLease('{"lease":"release","q":[12]}')).toThrow(/release needs q/);
    const many = JSON.stringify({ lease: "release", q: Array.from({ length: LEASE_MAX_NAMED + 1 }, (_, i) => String(i)) });
    expect(() => parseLease(many)).toThrow(/release needs q/);
  });
});
