// `edge9p rotate-links [--operator-token T] URL`: revokes every signed link
// of a share (POST /v1/shares/NAME/links/rotate, an operator route). Exit 0
// done, 1 the gateway refused or could not be reached, 2 bad usage.

import { parseArgs } from "node:util";

export const ROTATE_USAGE = `usage: edge9p rotate-links [--operator-token TOKEN] URL
  revokes every signed link of the share at URL (http(s)://HOST/v1/shares/NAME);
  the operator token defaults to $EDGE9P_OPERATOR_TOKEN
`;

/** The rotate route of the share a URL names (http(s), or the 9P route's ws(s)), or null. */
export function rotateUrlOf(s: string): string | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return null;
  }
  const m = /^\/v1\/shares\/([^/]+)(?:\/.*)?$/.exec(u.pathname);
  const scheme = { "http:": "http:", "https:": "https:", "ws:": "http:", "wss:": "https:" }[u.protocol];
  if (!m || !scheme) return null;
  return `${scheme}//${u.host}/v1/shares/${m[1]}/links/rotate`;
}

export async function rotateCommand(argv: string[]): Promise<number> {
  let token: string | undefined;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: argv, allowPositionals: true, options: { "operator-token": { type: "string" } } });
    token = parsed.values["operator-token"] ?? process.env.EDGE9P_OPERATOR_TOKEN;
    positionals = parsed.positionals;
  } catch (e) {
    process.stderr.write(`edge9p rotate-links: ${(e as Error).message}\n${ROTATE_USAGE}`);
    return 2;
  }
  const url = positionals.length === 1 ? rotateUrlOf(positionals[0]!) : null;
  if (!url) {
    process.stderr.write(ROTATE_USAGE);
    return 2;
  }
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers, body: "{}" });
  } catch (e) {
    process.stderr.write(`edge9p rotate-links: ${url}: ${(e as Error).cause ?? (e as Error).message}\n`);
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as { share?: string; rotated?: string; error?: string };
  if (!res.ok || !body.rotated) {
    process.stderr.write(`edge9p rotate-links: the gateway refused: HTTP ${res.status} ${body.error ?? ""}\n`);
    return 1;
  }
  process.stdout.write(`share ${body.share}: signed links rotated at ${body.rotated}: every link made before answers 403\n`);
  return 0;
}
