// Names that a byte-order-mark-dropping decoder would alias: "\ufeffhello.txt"
// published over "hello.txt" (the real one became a conflict copy) and a
// directory "\ufeff.." produced the key "PREFIX/../esc.txt". Each name is its
// own file with its own key, and no key has a "." or ".." segment.

import { describe, expect, it } from "vitest";
import { BUCKET, mount, put, shareObject, text } from "./support/gateway.ts";
import { cat, mkdir, writeFile } from "./support/fs.ts";

const BOM = "\ufeff";

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await BUCKET.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

describe("names with a byte-order mark", () => {
  it("keeps \\ufeffhello.txt and hello.txt two files with two keys", async () => {
    await put("other", "bom/hello.txt", "the real one");
    const { client: c } = await mount("other");
    expect(text(await cat(c, "bom/hello.txt"))).toBe("the real one");
    await writeFile(c, `bom/${BOM}hello.txt`, "the lookalike");
    expect(text(await cat(c, "bom/hello.txt"))).toBe("the real one");
    expect(text(await cat(c, `bom/${BOM}hello.txt`))).toBe("the lookalike");
    await shareObject("other").publishAll();
    expect(await keysUnder("other/deeper/bom/")).toEqual([`other/deeper/bom/${BOM}hello.txt`, "other/deeper/bom/hello.txt"].sort());
    expect(await (await BUCKET.get("other/deeper/bom/hello.txt"))!.text()).toBe("the real one");
    expect(await (await BUCKET.get(`other/deeper/bom/${BOM}hello.txt`))!.text()).toBe("the lookalike");
  });

  it("never makes a key with a '..' segment from a directory named \\ufeff..", async () => {
    const { client: c } = await mount("other");
    await mkdir(c, "esc");
    await mkdir(c, `esc/${BOM}..`);
    await writeFile(c, `esc/${BOM}../esc.txt`, "inside");
    await mkdir(c, `esc/${BOM}.`);
    await writeFile(c, `esc/${BOM}./dot.txt`, "inside too");
    await shareObject("other").publishAll();
    const all = await keysUnder("");
    for (const k of all) expect(k.split("/").some((s) => s === ".." || s === "."), k).toBe(false);
    expect(all).toContain(`other/deeper/esc/${BOM}../esc.txt`);
    expect(all).toContain(`other/deeper/esc/${BOM}./dot.txt`);
    expect(text(await cat(c, `esc/${BOM}../esc.txt`))).toBe("inside");
  });
});
