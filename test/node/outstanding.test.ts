// The bridge's record of requests without a reply, and the resume hello's
// rules (protocol/resume.ts), on real encoded messages.

import { describe, expect, it } from "vitest";
import { Outstanding } from "../../bridge/outstanding.ts";
import { type MessageInit, NOTAG, encode, isNumbered, MESSAGES, parseResumeHello } from "../../protocol/index.ts";

const enc = (m: MessageInit) => encode(m, "9P2000.L");
const getattr = (tag: number) => enc({ type: "Tgetattr", tag, fid: 1, request_mask: 0x7ffn });
const mkdir = (tag: number, name: string) => enc({ type: "Tmkdir", tag, dfid: 1, name, mode: 0o755, gid: 0 });
const rgetattrLike = (tag: number) => enc({ type: "Rlerror", tag, ecode: 2 });

describe("Outstanding", () => {
  it("numbers only the requests that must not run twice, in the order sent", () => {
    const o = new Outstanding();
    o.sent(enc({ type: "Tversion", tag: NOTAG, msize: 65536, version: "9P2000.L" }));
    o.sent(getattr(1));
    o.sent(mkdir(2, "a"));
    o.sent(enc({ type: "Tread", tag: 3, fid: 1, offset: 0n, count: 10 }));
    o.sent(mkdir(4, "b"));
    const { hello, messages } = o.replay();
    expect(hello).toEqual({ replay: 5, seqs: [1, 2, 3], next: 4 });
    expect(messages).toHaveLength(5);
  });

  it("settles a request by its tag and refuses a reply nothing waits for", () => {
    const o = new Outstanding();
    o.sent(mkdir(7, "a"));
    expect(o.answered(rgetattrLike(7))).toBe(true);
    expect(o.answered(rgetattrLike(7))).toBe(false);
    expect(o.size).toBe(0);
    // The tag used again: the new request waits, numbered after the first.
    o.sent(mkdir(7, "b"));
    expect(o.replay().hello).toEqual({ replay: 1, seqs: [2], next: 3 });
  });

  it("Rflush settles the flushed request too, Rversion everything sent before its Tversion", () => {
    const o = new Outstanding();
    o.sent(getattr(1));
    o.sent(mkdir(2, "a"));
    o.sent(enc({ type: "Tflush", tag: 3, oldtag: 2 }));
    expect(o.answered(enc({ type: "Rflush", tag: 3 }))).toBe(true);
    expect(o.replay().messages).toHaveLength(1);
    o.sent(enc({ type: "Tversion", tag: NOTAG, msize: 65536, version: "9P2000.L" }));
    o.sent(getattr(9)); // sent after the Tversion, before its Rversion
    expect(o.answered(enc({ type: "Rversion", tag: NOTAG, msize: 65536, version: "9P2000.L" }))).toBe(true);
    expect(o.size).toBe(1);
    expect(o.answered(rgetattrLike(9))).toBe(true);
  });
});

describe("resume rules", () => {
  it("reads and queries run again; everything that changes state is numbered", () => {
    for (const t of ["Tread", "Treaddir", "Tgetattr", "Treadlink", "Tstatfs", "Tgetlock"] as const) expect(isNumbered(MESSAGES[t].id), t).toBe(false);
    for (const t of ["Tlcreate", "Tmkdir", "Trenameat", "Tunlinkat", "Twrite", "Twalk", "Tattach", "Tlopen", "Tclunk", "Tsetattr", "Tlock", "Txattrcreate", "Tflush", "Tversion"] as const) {
      expect(isNumbered(MESSAGES[t].id), t).toBe(true);
    }
  });

  it("parses a hello and refuses malformed ones with the reason", () => {
    expect(parseResumeHello('{"replay":2,"seqs":[4],"next":6}')).toEqual({ replay: 2, seqs: [4], next: 6 });
    expect(() => parseResumeHello("{")).toThrow(/not JSON/);
    expect(() => parseResumeHello('{"replay":1,"seqs":["x"],"next":2}')).toThrow(/whole numbers/);
    expect(() => parseResumeHello('{"replay":0,"seqs":[1],"next":2}')).toThrow(/more numbers/);
    expect(() => parseResumeHello('{"replay":1,"seqs":[5],"next":5}')).toThrow(/not below next/);
  });
});
