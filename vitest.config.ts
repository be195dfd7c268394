import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Projects: plain Node for the protocol core, the bridge and the CLI
// (against a real local gateway); workerd (through Miniflare, with real R2
// and Durable Object storage) for everything that runs in the gateway; and
// the Linux guest, run on its own by npm run test:guest.
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
        plugins: [cloudflareTest({ wrangler: { configPath: "./test/workerd/wrangler.toml" } })],
        test: {
          name: "workerd",
          include: ["test/workerd/**/*.test.ts"],
        },
      },
      {
        // The same worker with small limits (journal cap, msize cap).
        plugins: [cloudflareTest({ wrangler: { configPath: "./test/workerd-limits/wrangler.toml" } })],
        test: {
          name: "workerd-limits",
          include: ["test/workerd-limits/**/*.test.ts"],
        },
      },
    ],
  },
});
