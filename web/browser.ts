// "/shares/NAME/#/PATH": a directory of the share. Entries are read a page
// (one Treaddir) at a time as the user scrolls, so a directory of thousands
// stays responsive; a file opens in a panel (text shown, anything
// downloadable through a signed link); uploads, new folder, rename, delete.

import { type DirPager, type Entry, isDirMode, joinPath as join, modeString } from "../client/share-files.ts";
import { authHeaders, type Connection } from "./connect.ts";
import { askName, confirmAction } from "./dialogs.ts";
import { el, size, time } from "./format.ts";
import { Uploads, picksOfDrop, picksOfInput } from "./uploads.ts";

/** Bytes of entries per Treaddir: a page of about 200 names. */
const PAGE_BYTES = 8192;
/** What a file's panel shows of it. */
const SHOW_BYTES = 512 * 1024;

/** Directories of up to this many entries are shown sorted once read. */
const SORT_MAX = 1000;

function byFolderThenName(a: Element, b: Element): number {
  const da = a.hasAttribute("data-dir") ? 0 : 1;
  const db = b.hasAttribute("data-dir") ? 0 : 1;
  if (da !== db) return da - db;
  const na = a.getAttribute("data-name") ?? "";
  const nb = b.getAttribute("data-name") ?? "";
  return na < nb ? -1 : na > nb ? 1 : 0;
}

export class DirView {
  private pager: DirPager | null = null;
  /** The pager whose pages are being read: a reload's new pager does not wait for the old one's. */
  private loadingFor: DirPager | null = null;
  private count = 0;
  private readonly rows = el("tbody");
  private readonly sentinel = el("div", { class: "status" });
  private readonly filePanel = el("section", { class: "panel", hidden: "" });
  private readonly uploads: Uploads;
  private readonly observer: IntersectionObserver;

  constructor(
    private readonly root: HTMLElement,
    private readonly conn: Connection,
    private readonly path: string,
  ) {
    this.uploads = new Uploads(conn.files, () => void this.reload());
    this.observer = new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting)) void this.more();
    }, { rootMargin: "800px" });
  }

  async show(): Promise<void> {
    const toolbar = el("div", { class: "toolbar" });
    if (!this.conn.readOnly) {
      const pickFiles = el("input", { type: "file", multiple: "", "data-upload": "files" });
      const pickFolder = el("input", { type: "file", "data-upload": "folder" });
      pickFolder.webkitdirectory = true;
      for (const input of [pickFiles, pickFolder]) {
        input.addEventListener("change", () => {
          void this.uploads.add(this.path, picksOfInput(input));
          input.value = "";
        });
      }
      const upFiles = el("button", {}, "Upload files");
      upFiles.addEventListener("click", () => pickFiles.click());
      const upFolder = el("button", {}, "Upload folder");
      upFolder.addEventListener("click", () => pickFolder.click());
      const mk = el("button", {}, "New folder");
      mk.addEventListener("click", () => void this.newFolder());
      toolbar.append(upFiles, upFolder, mk, pickFiles, pickFolder);
    } else {
      toolbar.append(el("span", { class: "muted" }, "read-only share"));
    }
    const refresh = el("button", {}, "Refresh");
    refresh.addEventListener("click", () => void this.reload());
    toolbar.append(refresh, el("span", { class: "muted" }, this.conn.readOnly ? "" : "or drop files and folders here"));

    const head = el("tr", {}, el("th", {}, "Name"), el("th", { class: "num" }, "Size"), el("th", {}, "Mode"), el("th", {}, "Modified"), el("th", {}, ""));
    const table = el("table", { id: "entries" }, el("thead", {}, head), this.rows);
    this.root.replaceChildren(toolbar, this.filePanel, this.uploads.panel, table, this.sentinel);
    if (!this.conn.readOnly) this.dropZone();
    await this.reload();
  }

  /** Starts the listing again from the first page (after a change). */
  async reload(): Promise<void> {
    this.observer.disconnect();
    const old = this.pager;
    this.pager = null;
    await old?.close();
    this.rows.replaceChildren();
    this.count = 0;
    delete this.sentinel.dataset.complete;
    this.sentinel.textContent = "Loading…";
    try {
      this.pager = await this.conn.files.openDir(this.path, PAGE_BYTES);
    } catch (e) {
      this.sentinel.replaceChildren(el("span", { class: "error" }, `${this.path || "/"}: ${(e as Error).message}`));
      return;
    }
    this.observer.observe(this.sentinel);
    await this.more();
  }

  /** The next page, and more while the end of the list is on screen. */
  private async more(): Promise<void> {
    const pager = this.pager;
    if (!pager || this.loadingFor === pager) return;
    this.loadingFor = pager;
    try {
      while (!pager.done && this.pager === pager) {
        const page = await pager.next();
        if (this.pager !== pager) return;
        for (const e of page) this.rows.append(this.row(e));
        this.count += page.length;
        this.sentinel.textContent = `${this.count} entries${pager.done ? "" : ", loading more as you scroll…"}`;
        if (this.sentinel.getBoundingClientRect().top > innerHeight + 800) break;
      }
      if (pager.done) {
        // Pages come in the share's order; once all are here, a directory
        // small enough to take in at once is sorted (folders first, then by
        // name). A larger one keeps its order: rows would jump under the reader.
        const sorted = this.count <= SORT_MAX;
        if (sorted) this.rows.append(...[...this.rows.children].sort(byFolderThenName));
        this.sentinel.textContent = `${this.count} ${this.count === 1 ? "entry" : "entries"}${sorted ? "" : ", in the share's order"}`;
        this.sentinel.dataset.complete = "";
      }
    } catch (e) {
      // A pager closed by a reload fails its last Treaddir: not an error to show.
      if (this.pager === pager) this.sentinel.replaceChildren(el("span", { class: "error" }, `listing failed: ${(e as Error).message}`));
    } finally {
      if (this.loadingFor === pager) this.loadingFor = null;
    }
  }

  private row(e: Entry): HTMLTableRowElement {
    const path = join(this.path, e.name);
    const dir = isDirMode(e.stat.mode);
    const name = dir
      ? el("a", { href: `#/${path.split("/").map(encodeURIComponent).join("/")}` }, `${e.name}/`)
      : el("button", { class: "link" }, e.name);
    if (!dir) name.addEventListener("click", () => void this.open(path, e));
    const actions = el("td");
    if (!dir) {
      const dl = el("button", { class: "link", title: "download" }, "Download");
      dl.addEventListener("click", () => void this.download(path, e.name));
      actions.append(dl);
    }
    if (!this.conn.readOnly) {
      const mv = el("button", { class: "link" }, "Rename");
      mv.addEventListener("click", () => void this.rename(e.name));
      const rm = el("button", { class: "link danger" }, "Delete");
      rm.addEventListener("click", () => void this.remove(e.name, dir));
      actions.append(mv, rm);
    }
    return el(
      "tr",
      dir ? { "data-name": e.name, "data-dir": "" } : { "data-name": e.name },
      el("td", { class: "name" }, name),
      el("td", { class: "num" }, dir ? "" : size(e.stat.size)),
      el("td", { class: "mode" }, modeString(e.stat.mode)),
      el("td", {}, time(e.stat.mtimeSec)),
      actions,
    );
  }

  /** Shows a file: its text, or that it is binary; a download either way. */
  private async open(path: string, e: Entry): Promise<void> {
    const chunks: Uint8Array[] = [];
    let got = 0;
    const dl = el("button", {}, "Download");
    dl.addEventListener("click", () => void this.download(path, e.name));
    const close = el("button", { class: "link" }, "Close");
    close.addEventListener("click", () => (this.filePanel.hidden = true));
    const body = el("div", { class: "muted" }, "Reading…");
    this.filePanel.replaceChildren(el("h2", {}, e.name, el("span", { class: "muted" }, size(e.stat.size)), dl, close), body);
    this.filePanel.hidden = false;
    try {
      await this.conn.files.read(path, (p) => {
        chunks.push(p.slice());
        got += p.byteLength;
      }, SHOW_BYTES);
    } catch (err) {
      body.replaceChildren(el("span", { class: "error" }, `${path}: ${(err as Error).message}`));
      return;
    }
    const bytes = new Uint8Array(got);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    let text: string | null = null;
    try {
      // Text is valid UTF-8 without NULs; when only the start was read, a
      // character cut at the end is held back (stream), not taken for binary.
      text = bytes.includes(0) ? null : new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: got < e.stat.size });
    } catch {
      text = null;
    }
    if (text === null) body.replaceChildren(el("p", { class: "muted" }, "A binary file: download it to open it."));
    else {
      const more = got < e.stat.size ? el("p", { class: "muted" }, `The first ${size(got)} of ${size(e.stat.size)}: download it for the rest.`) : "";
      body.replaceChildren(el("pre", { class: "text" }, text), more);
    }
  }

  /** Downloads through a signed link: a browser's download cannot carry the token. */
  private async download(path: string, name: string): Promise<void> {
    try {
      const res = await fetch(`/v1/shares/${encodeURIComponent(this.conn.share)}/links`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeaders(this.conn.token) },
        body: JSON.stringify({ path, expires_in: 600 }),
      });
      const body = (await res.json()) as { url?: string; error?: string };
      if (!res.ok || !body.url) throw new Error(body.error ?? `HTTP ${res.status}`);
      const a = el("a", { href: body.url, download: name });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (e) {
      this.flash(`download of ${path} failed: ${(e as Error).message}`);
    }
  }

  private async newFolder(): Promise<void> {
    const name = await askName("New folder name");
    if (!name) return;
    if (!this.validName(name)) return;
    await this.act(`mkdir ${name}`, () => this.conn.files.mkdir(join(this.path, name)));
  }

  private async rename(from: string): Promise<void> {
    const to = await askName(`Rename ${from} to`, from);
    if (!to || to === from || !this.validName(to)) return;
    await this.act(`rename ${from}`, () => this.conn.files.rename(join(this.path, from), join(this.path, to)));
  }

  private async remove(name: string, dir: boolean): Promise<void> {
    if (!(await confirmAction(`Delete ${name}${dir ? " and everything in it" : ""}?`, "Delete"))) return;
    await this.act(`delete ${name}`, () => this.conn.files.removeTree(join(this.path, name)));
  }

  private validName(name: string): boolean {
    if (name.includes("/") || name.includes("\0") || name === "." || name === "..") {
      this.flash(`${JSON.stringify(name)} is not a name: no '/', no NUL, not . or ..`);
      return false;
    }
    return true;
  }

  private async act(what: string, f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      this.flash(`${what} failed: ${(e as Error).message}`);
      return;
    }
    await this.reload();
  }

  private flash(text: string): void {
    this.filePanel.replaceChildren(el("p", { class: "error", role: "alert" }, text));
    this.filePanel.hidden = false;
  }

  private dropZone(): void {
    const zone = this.root;
    zone.ondragover = (ev) => {
      ev.preventDefault();
      zone.classList.add("drop");
    };
    zone.ondragleave = () => zone.classList.remove("drop");
    zone.ondrop = (ev) => {
      ev.preventDefault();
      zone.classList.remove("drop");
      if (ev.dataTransfer) void picksOfDrop(ev.dataTransfer).then((picks) => this.uploads.add(this.path, picks));
    };
  }

  close(): void {
    this.observer.disconnect();
    void this.pager?.close();
    this.pager = null;
  }
}
