// The page's session with a share: 9P over the browser's WebSocket, with the
// project's own client. Browsers cannot set headers on a WebSocket, so a
// token travels as the subprotocol "edge9p-token.<token>" beside "9p"
// (worker/auth.ts); it is asked for once and kept for the tab's life.

import { ShareFiles } from "../client/share-files.ts";
import { ACK_SUBPROTOCOL, CLOSE, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, clientOverWebSocket } from "../protocol/index.ts";
import { askToken } from "./dialogs.ts";

/** The largest message the page negotiates: big enough for fast uploads, small enough for a tab. */
const MSIZE = 1 << 20;

export interface Connection {
  readonly share: string;
  readonly files: ShareFiles;
  readonly token: string | null;
  readonly readOnly: boolean;
  close(): void;
}

const storeKey = (share: string) => `edge9p-token:${share}`;

/** Headers for the gateway's HTTP routes. */
export function authHeaders(token: string | null): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/**
 * Asks the gateway whether this page may open the share (HTTP first: a
 * refused WebSocket tells a page nothing about why), asking for a token
 * while it is missing or wrong, then opens the 9P session.
 */
export async function connect(share: string, onLost: (why: string) => void): Promise<Connection> {
  let token = sessionStorage.getItem(storeKey(share));
  let info: { read_only: boolean };
  for (;;) {
    const res = await fetch(`/v1/shares/${encodeURIComponent(share)}`, { headers: authHeaders(token) });
    if (res.ok) {
      info = (await res.json()) as { read_only: boolean };
      break;
    }
    const why = ((await res.json().catch(() => ({}))) as { error?: string }).error ?? `HTTP ${res.status}`;
    if (res.status !== 401 && res.status !== 403) throw new Error(why);
    token = await askToken(share, res.status === 403 ? "That token does not open it." : "");
    if (token === null) throw new Error(why);
  }
  if (token) sessionStorage.setItem(storeKey(share), token);

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // 9p.ack: the page acknowledges what it read (the gateway's bound on unread replies).
  const protocols = [ACK_SUBPROTOCOL, SUBPROTOCOL, ...(token ? [TOKEN_SUBPROTOCOL_PREFIX + token] : [])];
  const ws = new WebSocket(`${scheme}//${location.host}/v1/shares/${encodeURIComponent(share)}/9p`, protocols);
  const c = clientOverWebSocket(ws);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("close", (ev) => reject(new Error(`the gateway closed the connection (${ev.code} ${ev.reason})`)), { once: true });
  });
  ws.addEventListener("close", (ev) => onLost(`connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ""})`));
  const files = await ShareFiles.attach(c, MSIZE);
  return { share, files, token, readOnly: info.read_only, close: () => ws.close(CLOSE.NORMAL, "page closed") };
}
