// The share browser's entry: "/" lists the shares, "/shares/NAME/" browses
// one, the directory in the fragment ("#/a/b"), so back and forward work and
// a directory's address can be shared.

import { type Connection, connect } from "./connect.ts";
import { DirView } from "./browser.ts";
import { el } from "./format.ts";
import { showShares } from "./shares.ts";

const app = document.getElementById("app")!;
const crumbs = document.getElementById("crumbs")!;
const conn = document.getElementById("conn")!;

function fail(e: unknown): void {
  app.replaceChildren(el("p", { class: "error", role: "alert" }, (e as Error).message ?? String(e)));
}

function dirOfHash(): string {
  return decodeURIComponent(location.hash.replace(/^#\/?/, ""))
    .split("/")
    .filter(Boolean)
    .join("/");
}

function showCrumbs(share: string, dir: string): void {
  const parts = dir ? dir.split("/") : [];
  const links = [el("a", { href: "#/" }, share)];
  parts.forEach((p, i) => links.push(el("a", { href: `#/${parts.slice(0, i + 1).map(encodeURIComponent).join("/")}` }, p)));
  crumbs.replaceChildren(...links);
  document.title = `${share}/${dir} · edge9p`;
}

async function browse(share: string): Promise<void> {
  let session: Connection;
  try {
    session = await connect(share, (why) => {
      conn.textContent = `${why}: reload the page to reconnect`;
      conn.classList.add("bad");
    });
  } catch (e) {
    return fail(e);
  }
  conn.textContent = `9P over WebSocket, msize ${session.files.c.msize}`;
  let view: DirView | null = null;
  const show = () => {
    view?.close();
    const dir = dirOfHash();
    showCrumbs(share, dir);
    view = new DirView(app, session, dir);
    view.show().catch(fail);
  };
  addEventListener("hashchange", show);
  show();
}

const m = /^\/shares\/([^/]+)\/?$/.exec(location.pathname);
if (m) void browse(decodeURIComponent(m[1]!));
else {
  crumbs.replaceChildren();
  showShares(app).catch(fail);
}
