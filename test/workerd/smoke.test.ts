import { describe, expect, it } from "vitest";
import { listDir, mount, put, readFile } from "./support/gateway.ts";

describe("smoke", () => {
  it("lists and reads an object put with the R2 binding", async () => {
    await put("main", "hello.txt", "hello\n");
    const c = await mount();
    const { entries } = await listDir(c.client, "");
    expect(entries.map((e) => e.name)).toEqual([".", "..", "hello.txt"]);
    expect(new TextDecoder().decode(await readFile(c.client, "hello.txt"))).toBe("hello\n");
  });
});
