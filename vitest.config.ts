import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Projects: plain Node for the protocol core, the bridge and the CLI
// (against a real local gateway); workerd (through Miniflare, with real R2
// and Durable Object storage) for everything that runs in the gateway; and
// the Linux guest, the browser and the browser VM, run on their own by npm
// run test:guest, npm run test:browser and npm run test:browser-vm.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // The real Linux client in a QEMU guest, and diod's tools: needs root
        // and apt-get the first time (npm run test:guest).
        test: {
          name: "guest",
          include: ["test/guest/**/*.test.ts"],
          environment: "node",
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
        },
      },
      {
        // The share browser in Debian's Chromium (headless, playwright-core),
        // against a real local gateway (npm run test:browser).
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // What the page shows is waited for, not timed: on a loaded machine
          // a first screen can take more than expect.poll's default second.
          expect: { poll: { timeout: 30_000 } },
        },
      },
      {
        // A Linux guest in v86 in Chromium, mounting a share over the
        // WebSocket with no bridge (npm run test:browser-vm): emulated, so
        // every wait is generous.
        test: {
          name: "browser-vm",
          include: ["test/browser-vm/**/*.test.ts"],
          environment: "node",
          testTimeout: 900_000,
          hookTimeout: 900_000,
        },
      },
      {
        plugins: [cloudflareTest({ wrangler: { configPath: "./test/workerd/wrangler.toml" } })],
        test: {
          name: "workerd",
          include: ["test/workerd/**/*.test.ts"],
          // Several tests move tens of megabytes through R2 and the journal:
          // a shared two-core machine takes more than vitest's 5 s for them.
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The same worker with small limits (journal cap, msize cap).
        plugins: [cloudflareTest({ wrangler: { configPath: "./test/workerd-limits/wrangler.toml" } })],
        test: {
          name: "workerd-limits",
          include: ["test/workerd-limits/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
    ],
  },
});
