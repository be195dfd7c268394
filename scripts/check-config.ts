// `npm run check [-- --config FILE] [--env NAME]`: validates the gateway's
// configuration the way the worker will, before it is deployed (Workers have
// no start-up phase to fail in). Runs in `npm test` and before `npm run deploy`.

import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { CONFIG_VAR, objectName, parseConfig } from "../worker/config.ts";

export function checkConfig(configPath: string, env?: string): { ok: boolean; lines: string[] } {
  const wc = unstable_readConfig({ config: configPath, env }, { hideWarnings: true });
  const buckets = new Map(wc.r2_buckets.map((b: { binding: string; bucket_name?: string }) => [b.binding, b.bucket_name]));
  const raw = (wc.vars as Record<string, unknown>)[CONFIG_VAR];
  // Secrets (EDGE9P_TOKENS) live in Cloudflare, not in the file: what they
  // decide is noted rather than checked.
  const r = parseConfig(raw, (name) => buckets.has(name), "not visible", "not visible");
  if (!r.ok) return { ok: false, lines: [r.error] };
  const lines: string[] = [...(r.notes ?? [])];
  let ok = true;
  for (const [name, share] of Object.entries(r.config.shares)) {
    const actual = buckets.get(share.binding);
    if (actual !== undefined && actual !== share.bucket) {
      ok = false;
      lines.push(
        `configuration error: ${CONFIG_VAR}.shares.${name}.bucket: "${share.bucket}", but binding ${share.binding} is bucket "${actual}" in ${configPath}`,
      );
      continue;
    }
    lines.push(
      `share ${name}: bucket ${share.bucket}, prefix "${share.prefix}"${share.read_only ? ", read-only" : ""} (object ${objectName(share)})`,
    );
  }
  if (!wc.durable_objects.bindings.some((b: { name: string; class_name: string }) => b.name === "SHARE" && b.class_name === "ShareObject")) {
    ok = false;
    lines.push(`configuration error: durable_objects: bind SHARE to class ShareObject`);
  }
  lines.push(`msize cap ${r.config.msize_cap}, in-flight budget ${r.config.inflight_bytes}, revalidate ${r.config.dir_revalidate_ms} ms`);
  return { ok, lines };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { config: { type: "string" }, env: { type: "string" } } });
  const path = values.config ?? "wrangler.toml";
  try {
    const { ok, lines } = checkConfig(path, values.env);
    for (const l of lines) (ok ? console.log : console.error)(l);
    console.log(ok ? `${path}: configuration OK` : `${path}: configuration has errors`);
    process.exitCode = ok ? 0 : 1;
  } catch (e) {
    console.error(`${path}: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
