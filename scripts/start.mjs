#!/usr/bin/env node
// `npm start [-- --port N]`: the gateway on this machine, in workerd through
// `wrangler dev`, with R2 and Durable Objects on local disk (.wrangler/state).
// Prints where it listens once it answers.
//
// The operator routes (drain, check, stats, links/rotate) need an operator
// token: this takes $EDGE9P_OPERATOR_TOKEN, or makes one for the run, hands
// its SHA-256 to the gateway as the EDGE9P_OPERATOR_TOKENS variable, and
// prints the token.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";

const args = process.argv.slice(2);
let port = 8787;
const rest = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--port" || a === "-p") port = Number(args[++i]);
  else if (a.startsWith("--port=")) port = Number(a.slice("--port=".length));
  else rest.push(a);
}
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`edge9p: --port wants a number from 1 to 65535`);
  process.exit(2);
}

const operatorToken = process.env.EDGE9P_OPERATOR_TOKEN || randomBytes(24).toString("base64url");
if (!/^[A-Za-z0-9_-]{16,256}$/.test(operatorToken)) {
  console.error(`edge9p: EDGE9P_OPERATOR_TOKEN must be 16 to 256 characters of hex or base64url (npx edge9p token makes one)`);
  process.exit(2);
}
const operatorHash = createHash("sha256").update(operatorToken).digest("hex");

const wrangler = createRequire(import.meta.url).resolve("wrangler/bin/wrangler.js");
const devArgs = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--var", `EDGE9P_OPERATOR_TOKENS:${JSON.stringify([operatorHash])}`, ...rest];
const child = spawn(process.execPath, [wrangler, ...devArgs], {
  stdio: ["inherit", "inherit", "inherit"],
  // The gateway needs no Request.cf object: skip fetching one from the network.
  env: { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", ...process.env },
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

const base = `http://127.0.0.1:${port}`;
const deadline = Date.now() + 120_000;
while (Date.now() < deadline && child.exitCode === null) {
  try {
    const res = await fetch(`${base}/healthz`);
    if (res.ok) {
      const share = await fetch(`${base}/v1/shares/dev`).then((r) => (r.ok ? r.json() : null));
      const lines = [``, `edge9p gateway: ${base}  (health: ${base}/healthz)`];
      if (share) {
        const ws = `ws://127.0.0.1:${port}${share.url}`;
        lines.push(
          `share dev: ${ws}  (msize up to ${share.msize_max})`,
          `share browser: ${base}/shares/dev/`,
          ``,
          `for a Linux guest VM, in another terminal:`,
          `  npx edge9p bridge ${ws}`,
          `then in the guest (QEMU user networking reaches this machine as 10.0.2.2):`,
          `  mount -t 9p -o trans=tcp,port=5640,version=9p2000.L,msize=1048576 10.0.2.2 /mnt`,
          `put files into the share with any R2 tool, e.g.:`,
          `  npx wrangler r2 object put edge9p-dev/hello.txt --local --file hello.txt`,
          ``,
          `operator token${process.env.EDGE9P_OPERATOR_TOKEN ? " (from EDGE9P_OPERATOR_TOKEN)" : " for this run (EDGE9P_OPERATOR_TOKEN=... npm start keeps one)"}:`,
          `  ${operatorToken}`,
          `for the share's figures, its consistency check, drain and link rotation:`,
          `  curl -H "Authorization: Bearer ${operatorToken}" ${base}/v1/shares/dev/stats`,
          `  EDGE9P_OPERATOR_TOKEN=${operatorToken} npx edge9p rotate-links ${base}/v1/shares/dev`,
        );
      }
      console.log(lines.join("\n") + "\n");
      break;
    }
  } catch {
    // not up yet
  }
  await new Promise((r) => setTimeout(r, 250));
}
