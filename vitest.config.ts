import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "packages/*/test/**/*.test.ts", "services/*/test/**/*.test.ts"],
    // The fresh-clone test installs and builds a whole clone (minutes): CI runs
    // it on its own (`npm run test:fresh-clone`), `npm test` does not.
    exclude: [...configDefaults.exclude, "test/fresh-clone/**"],
    globalSetup: ["./test/support/postgres-global-setup.ts"],
    // End-to-end tests start real processes and tmux servers: give them room.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The caller's SKEIN_*/provider/goose/tmux variables never reach a test.
    setupFiles: ["./test/support/seal-env.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
