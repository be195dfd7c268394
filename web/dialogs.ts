// Small modal dialogs (<dialog>): a name to type, or a yes/no.

import { el } from "./format.ts";

function open(body: Node[], confirmText: string, danger = false): Promise<HTMLDialogElement | null> {
  const d = el("dialog");
  const form = el("form", { method: "dialog" });
  const ok = el("button", { value: "ok", class: danger ? "danger" : "" }, confirmText);
  const cancel = el("button", { value: "cancel", formnovalidate: "" }, "Cancel");
  form.append(...body, el("menu", {}, cancel, ok));
  d.append(form);
  document.body.append(d);
  return new Promise((resolve) => {
    d.addEventListener("close", () => {
      d.remove();
      resolve(d.returnValue === "ok" ? d : null);
    });
    d.showModal();
  });
}

/** Asks for a name (a new folder's, a new name); null when cancelled. */
export async function askName(title: string, value = ""): Promise<string | null> {
  const input = el("input", { type: "text", name: "name", required: "", autocomplete: "off", "aria-label": title });
  input.value = value;
  const d = await open([el("label", {}, title), input], "OK");
  return d ? input.value : null;
}

export async function askToken(share: string, why: string): Promise<string | null> {
  const input = el("input", { type: "password", name: "token", required: "", autocomplete: "off", "aria-label": "token" });
  const d = await open([el("p", {}, `Share ${share} needs a token. ${why}`), input], "Open");
  return d ? input.value.trim() : null;
}

export async function confirmAction(text: string, confirmText: string): Promise<boolean> {
  return (await open([el("p", {}, text)], confirmText, true)) !== null;
}
