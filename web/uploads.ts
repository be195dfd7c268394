// Uploads from the page: files picked or dropped (folders too), written
// through 9P, 4 files at a time, each with its own progress bar.

import { eachAtOnce, isDirMode, joinPath as join } from "../client/share-files.ts";
import { P9Error } from "../protocol/index.ts";
import type { ShareFiles } from "../client/share-files.ts";
import { el, rate, size } from "./format.ts";

/** A file to upload and its path below the target directory ("a/b.txt"). */
export interface Pick {
  file: File;
  rel: string;
}

const PIECE = 1 << 20;
const AT_ONCE = 4;

async function* pieces(file: File): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < file.size; at += PIECE) {
    yield new Uint8Array(await file.slice(at, at + PIECE).arrayBuffer());
  }
}

/** Files from an <input type=file> (webkitRelativePath holds a picked folder's paths). */
export function picksOfInput(input: HTMLInputElement): Pick[] {
  return [...(input.files ?? [])].map((file) => ({ file, rel: file.webkitRelativePath || file.name }));
}

/** Files from a drop, folders walked. The entries must be taken before the handler returns. */
export function picksOfDrop(dt: DataTransfer): Promise<Pick[]> {
  const entries: FileSystemEntry[] = [];
  const out: Pick[] = [];
  for (const item of [...dt.items].filter((i) => i.kind === "file")) {
    const entry = item.webkitGetAsEntry();
    const file = entry ? null : item.getAsFile();
    // Without an entry (a DataTransfer made by a script), the file alone.
    if (entry) entries.push(entry);
    else if (file) out.push({ file, rel: file.name });
  }
  const walk = async (e: FileSystemEntry, prefix: string): Promise<void> => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isFile) {
      const file = await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej));
      out.push({ file, rel });
      return;
    }
    const reader = (e as FileSystemDirectoryEntry).createReader();
    // readEntries answers in batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, rel);
    }
  };
  return (async () => {
    for (const e of entries) await walk(e, "");
    return out;
  })();
}

export class Uploads {
  readonly panel = el("section", { class: "panel uploads", hidden: "" });
  private readonly list = el("ul");
  private readonly summary = el("span", { class: "muted" });

  constructor(
    private readonly files: ShareFiles,
    private readonly onDone: () => void,
  ) {
    const clear = el("button", { class: "link" }, "Clear");
    clear.addEventListener("click", () => {
      this.list.replaceChildren();
      this.panel.hidden = true;
    });
    this.panel.append(el("h2", {}, "Uploads", this.summary, clear), this.list);
  }

  /** Uploads `picks` into directory `dir`, making the folders they need. */
  async add(dir: string, picks: Pick[]): Promise<void> {
    if (picks.length === 0) return;
    this.panel.hidden = false;
    const rows = picks.map((p) => {
      const bar = el("progress", { max: String(Math.max(p.file.size, 1)), value: "0" });
      const state = el("span", { class: "muted" }, "waiting");
      this.list.append(el("li", { "data-path": p.rel }, el("span", {}, p.rel), bar, state));
      return { p, bar, state };
    });
    let done = 0;
    let failed = 0;
    const tell = () => (this.summary.textContent = `${done} of ${picks.length} done${failed ? `, ${failed} failed` : ""}`);
    tell();
    try {
      await this.makeDirs(dir, picks);
    } catch (e) {
      for (const r of rows) r.state.textContent = `failed: ${(e as Error).message}`;
      return;
    }
    await eachAtOnce(rows, AT_ONCE, async ({ p, bar, state }) => {
      const started = performance.now();
      let sent = 0;
      state.textContent = "uploading";
      try {
        await this.files.write(join(dir, p.rel), 0o644, pieces(p.file), (n) => {
          sent += n;
          bar.value = sent;
          state.textContent = `${size(sent)} of ${size(p.file.size)}`;
        });
        bar.value = Math.max(p.file.size, 1);
        state.textContent = `done, ${size(p.file.size)} ${rate(p.file.size, performance.now() - started)}`;
        done++;
      } catch (e) {
        state.textContent = `failed: ${(e as Error).message}`;
        state.className = "error";
        failed++;
      }
      tell();
    });
    this.onDone();
  }

  /** mkdir -p for every folder the picks name, parents first. */
  private async makeDirs(dir: string, picks: Pick[]): Promise<void> {
    const dirs = new Set<string>();
    for (const p of picks) {
      const parts = p.rel.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    }
    for (const d of [...dirs].sort((a, b) => a.split("/").length - b.split("/").length)) {
      try {
        await this.files.mkdir(join(dir, d));
      } catch (e) {
        if (!(e instanceof P9Error && e.code === "EEXIST")) throw e;
        if (!isDirMode((await this.files.stat(join(dir, d))).mode)) throw new Error(`${join(dir, d)} exists and is not a folder`);
      }
    }
  }
}
