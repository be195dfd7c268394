// "/": the shares this gateway serves.

import { el } from "./format.ts";

export async function showShares(root: HTMLElement): Promise<void> {
  const res = await fetch("/v1/shares");
  const body = (await res.json()) as { shares?: { name: string; read_only: boolean; token: boolean }[]; error?: string };
  if (!res.ok || !body.shares) throw new Error(body.error ?? `HTTP ${res.status}`);
  const list = el("ul");
  for (const s of body.shares) {
    const notes = [s.read_only ? "read-only" : "read-write", s.token ? "token" : "open"].join(", ");
    list.append(el("li", {}, el("a", { href: `/shares/${encodeURIComponent(s.name)}/` }, s.name), " ", el("span", { class: "muted" }, notes)));
  }
  root.replaceChildren(el("h1", {}, "Shares"), body.shares.length ? el("div", { class: "shares" }, list) : el("p", { class: "muted" }, "This gateway serves no shares."));
}
