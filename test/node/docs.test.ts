// The docs stay true to the repository: every relative link in the README and
// the docs points to a file that exists (and to a heading of it, for a
// #fragment), and the README's configuration table names every setting of
// worker/config.ts and no other. The defaults live only in config.ts.

import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigSchema, ShareSchema } from "../../worker/config.ts";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const DOCS = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
  "bench/README.md",
  "test/README.md",
  "test/guest/README.md",
  "test/fixtures/captures/README.md",
];

/** The text outside fenced code blocks, line by line; inline code emptied unless `keepCode`. */
function prose(text: string, keepCode = false): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of text.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) {
      fenced = !fenced;
      out.push("");
      continue;
    }
    out.push(fenced ? "" : keepCode ? line.replace(/`/g, "") : line.replace(/`[^`]*`/g, "``"));
  }
  return out;
}

/** GitHub's anchors for a file's headings. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text, true)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Relative link targets of a markdown file: [text](target), ![alt](target). */
function links(text: string): string[] {
  const out: string[] = [];
  for (const line of prose(text)) {
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const t = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(t)) continue; // http:, https:, mailto:
      out.push(t);
    }
  }
  return out;
}

describe("docs", () => {
  it("every relative link points to a file (and heading) that exists", () => {
    const broken: string[] = [];
    let count = 0;
    for (const doc of DOCS) {
      const text = readFileSync(join(root, doc), "utf8");
      for (const link of links(text)) {
        count++;
        const [path, fragment] = link.split("#", 2) as [string, string | undefined];
        const target = path === "" ? join(root, doc) : resolve(root, dirname(doc), decodeURIComponent(path));
        if (!target.startsWith(root) || !existsSync(target)) {
          broken.push(`${doc}: ${link} (no such file)`);
          continue;
        }
        if (fragment === undefined || fragment === "") continue;
        if (statSync(target).isDirectory() || !target.endsWith(".md")) {
          broken.push(`${doc}: ${link} (a fragment of a file that is not markdown)`);
          continue;
        }
        if (!anchors(readFileSync(target, "utf8")).has(fragment)) {
          broken.push(`${doc}: ${link} (no heading #${fragment} in ${relative(root, target)})`);
        }
      }
    }
    expect(count).toBeGreaterThan(30);
    expect(broken).toEqual([]);
  });

  it("the README's configuration table names every setting of worker/config.ts, and no other", () => {
    const text = readFileSync(join(root, "README.md"), "utf8");
    const section = /\n## Configuration\n([\s\S]*?)\n## /.exec(text)?.[1];
    expect(section, "README.md has a ## Configuration section").toBeDefined();
    const rows = section!.split("\n").filter((l) => l.startsWith("| `"));
    const header = section!.split("\n").find((l) => l.startsWith("| setting"));
    // Defaults are config.ts's alone: the table does not repeat them.
    expect(header).toBe("| setting | meaning |");
    const named = new Set<string>();
    for (const row of rows) {
      // `shares.NAME.uid`, `gid`, ...: the names after a share's first are the share's too.
      const first = row.split(" | ")[0]!;
      const names = [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
      const ofShare = names[0]!.startsWith("shares.NAME.");
      for (const n of names) named.add(ofShare ? `share:${n.replace(/^shares\.NAME\./, "")}` : n);
    }
    const top = Object.keys(ConfigSchema.in.shape).filter((k) => k !== "shares");
    const share = Object.keys(ShareSchema.shape).map((k) => `share:${k}`);
    expect([...named].sort()).toEqual([...top, ...share].sort());
  });
});
