// A share as the file commands see it: 9P over a WebSocket straight to the
// gateway (no mount, no bridge); the path-level operations are
// client/share-files.ts, shared with the browser page.

import WebSocket from "ws";
import { ShareFiles } from "../client/share-files.ts";
import { ACK_SUBPROTOCOL, CLOSE, SUBPROTOCOL, clientOverWebSocket } from "../protocol/index.ts";

export { type Stat, isDirMode } from "../client/share-files.ts";

/** A share URL split into its 9P WebSocket URL and the path within the share. */
export interface ShareTarget {
  wsUrl: string;
  path: string;
}

/**
 * Parses `http(s)://HOST/v1/shares/NAME[/PATH]` (ws:// and wss:// too).
 * Returns null when the URL does not name a share.
 */
export function parseShareUrl(s: string): ShareTarget | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return null;
  }
  const m = /^\/v1\/shares\/([^/]+)(?:\/(.*))?$/.exec(u.pathname);
  if (!m || !["http:", "https:", "ws:", "wss:"].includes(u.protocol)) return null;
  const scheme = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  const path = (m[2] ?? "").split("/").filter(Boolean).map(decodeURIComponent).join("/");
  return { wsUrl: `${scheme}//${u.host}/v1/shares/${m[1]}/9p`, path };
}

/** A share over a WebSocket from Node (`ws`), the token in Authorization. */
export class Remote extends ShareFiles {
  private ws!: WebSocket;

  static async open(wsUrl: string, token?: string, msize = 1 << 20): Promise<Remote> {
    const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    const ws = new WebSocket(wsUrl, [ACK_SUBPROTOCOL, SUBPROTOCOL], { headers, perMessageDeflate: false, maxPayload: msize + 4096 });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => {
        let body = "";
        res.on("data", (b: Buffer) => (body += b.toString()));
        res.on("end", () => reject(new Error(`the gateway refused: HTTP ${res.statusCode} ${body.trim()}`)));
      });
      ws.once("error", reject);
    });
    const c = clientOverWebSocket(ws as unknown as Parameters<typeof clientOverWebSocket>[0]);
    const r = new Remote(c);
    r.ws = ws;
    await ShareFiles.attach(c, msize);
    return r;
  }

  close(): void {
    this.ws.close(CLOSE.NORMAL, "done");
  }
}
