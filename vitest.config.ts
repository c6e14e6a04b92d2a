import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts"],
    // End-to-end tests start real processes and tmux servers: give them room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The caller's SKEIN_*/provider/goose/tmux variables never reach a test.
    setupFiles: ["./test/support/seal-env.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
