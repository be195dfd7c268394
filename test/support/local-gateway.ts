// A real local gateway for the tests and benchmarks that need one from the
// outside: `wrangler dev` (workerd through Miniflare, exactly what `npm
// start` runs) on free ports with its own state directory, and the share's
// R2 bucket reachable from Node (getPlatformProxy on the same state).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface GatewayOptions {
  /** Overrides of the EDGE9P configuration (merged over the dev share's); null passes none. */
  config?: Record<string, unknown> | null;
  /** Another worker's wrangler config (the benchmark's raw worker). */
  wranglerConfig?: string;
  /** Share another gateway's state directory (and so its R2 bucket). */
  stateDir?: string;
  /** Print the gateway's output as it comes. */
  verbose?: boolean;
}

export interface LocalGateway {
  readonly url: string;
  readonly port: number;
  readonly stateDir: string;
  /** ws://.../v1/shares/NAME/9p */
  wsUrl(share?: string): string;
  /** The dev share's bucket, from Node. */
  bucket(): Promise<R2BucketLike>;
  /** Everything the gateway printed. */
  output(): string;
  /** Stops the gateway (as a deploy or crash would: sockets drop). Keeps the state. */
  kill(): Promise<void>;
  /** Starts it again on the same port and state. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  pid(): number | undefined;
  /** The port of wrangler's inspector (DevTools protocol: CPU profiles of the worker). */
  inspectorPort(): number;
}

/** The part of the R2 binding the tests use (the proxy's types are loose). */
export interface R2BucketLike {
  put(key: string, value: Uint8Array | string, opts?: { customMetadata?: Record<string, string> }): Promise<unknown>;
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
  delete(keys: string | string[]): Promise<void>;
  list(opts?: { prefix?: string; cursor?: string }): Promise<{ objects: { key: string; size: number }[]; truncated: boolean; cursor?: string }>;
}

/** The operator token of every gateway started here (for /drain, /check, /stats, /links/rotate). */
export const OPERATOR_TOKEN = "local-operator-token-0123456789";
/** The header that carries it. */
export const OPERATOR_AUTH = { Authorization: `Bearer ${OPERATOR_TOKEN}` };

/**
 * GET with the operator token, tried once more on a dropped connection:
 * undici reuses kept-alive connections, and one the gateway closed just then
 * fails the request with "other side closed" (UND_ERR_SOCKET) before any of
 * it reached the gateway, as a poll every half second now and then does.
 */
export async function operatorGet(url: string): Promise<Response> {
  try {
    return await fetch(url, { headers: OPERATOR_AUTH });
  } catch (e) {
    if ((e as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw e;
    return fetch(url, { headers: OPERATOR_AUTH });
  }
}

/**
 * An R2 call through wrangler's platform proxy, tried once more when its
 * connection broke (a 64 MiB put failed so with EPIPE, "fetch failed", in a
 * loaded CI run); every call here is idempotent.
 */
async function onceMore<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    if (!(e instanceof TypeError) || !["EPIPE", "ECONNRESET", "UND_ERR_SOCKET"].includes(code ?? "")) throw e;
    return call();
  }
}

const DEFAULT_CONFIG = {
  shares: { dev: { binding: "DEV_BUCKET", bucket: "edge9p-dev", prefix: "" } },
  // SHA-256 of OPERATOR_TOKEN.
  operator_token_hashes: ["3e624fd9725e184043d74eeaa24db10981620373f3440fa981cbec9132eabd79"],
};

export async function startLocalGateway(opts: GatewayOptions = {}): Promise<LocalGateway> {
  const port = await freePort();
  const ownState = opts.stateDir === undefined;
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), "edge9p-gw-"));
  const configFile = opts.wranglerConfig ?? join(ROOT, "wrangler.toml");
  const vars = opts.config === null ? [] : ["--var", `EDGE9P:${JSON.stringify({ ...DEFAULT_CONFIG, ...opts.config })}`];
  let out = "";
  let child: ChildProcess | null = null;
  let proxy: { env: Record<string, unknown>; dispose(): Promise<void> } | null = null;
  let inspector = 0;

  // wrangler runs the [build] command again when its watcher of web/ is
  // ready, and reloads workerd with the result; under load that reload can
  // bind the port before the first listener let go, and workerd exits with
  // "Address already in use" (once in a CI run of the log-level test). A
  // start that failed so is tried again (the same port, a new inspector
  // port), three times at most.
  const launch = async () => {
    for (let attempt = 1; ; attempt++) {
      const from = out.length;
      try {
        await launchOnce();
        return;
      } catch (e) {
        if (attempt >= 3 || !out.slice(from).includes("Address already in use")) throw e;
        await kill();
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  };

  const launchOnce = async () => {
    inspector = await freePort();
    child = spawn(
      process.execPath,
      [
        join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
        "dev",
        "--config",
        configFile,
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(inspector),
        "--persist-to",
        stateDir,
        "--show-interactive-dev-session=false",
        ...vars,
      ],
      {
        cwd: ROOT,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      },
    );
    const take = (b: Buffer) => {
      out += b.toString();
      if (opts.verbose) process.stderr.write(b);
    };
    child.stdout!.on("data", take);
    child.stderr!.on("data", take);
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}):\n${out}`);
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.ok) break;
        throw new Error(`healthz ${r.status}: ${await r.text()}`);
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`gateway did not answer: ${(e as Error).message}\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const kill = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      c.kill("SIGKILL");
    }
    await gone;
  };

  await launch();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stateDir,
    wsUrl: (share = "dev") => `ws://127.0.0.1:${port}/v1/shares/${share}/9p`,
    async bucket() {
      if (!proxy) {
        const { getPlatformProxy } = await import("wrangler");
        proxy = (await getPlatformProxy({
          // The bucket alone (bucket.wrangler.toml says why), on the gateway's state.
          configPath: join(ROOT, "test/support/bucket.wrangler.toml"),
          persist: { path: join(stateDir, "v3") },
        })) as unknown as typeof proxy;
      }
      const b = proxy!.env.DEV_BUCKET as R2BucketLike;
      // The proxy serialises only plain, whole Uint8Arrays (not Buffers or views).
      return {
        ...b,
        put: (key, value, o) =>
          onceMore(() =>
            b.put(key, typeof value === "string" || value.constructor === Uint8Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : new Uint8Array(value), o),
          ),
        get: (key) => onceMore(() => b.get(key)),
        delete: (keys) => onceMore(() => b.delete(keys)),
        list: (o) => onceMore(() => b.list(o)),
      };
    },
    output: () => out,
    kill,
    restart: launch,
    pid: () => child?.pid,
    inspectorPort: () => inspector,
    async stop() {
      await kill();
      await proxy?.dispose();
      proxy = null;
      if (ownState) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
