import { availableParallelism } from "node:os";
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
    // The files mostly wait on the processes they start (services, tmux,
    // PostgreSQL), so two run at once even on two cores; more than four would
    // crowd the shared PostgreSQL and tmux. Each file is a worker process of
    // its own (env, module state) and counts, names and ends only its own
    // processes, tmux sockets, ports, directories and databases
    // (CONTRIBUTING.md, "Tests that run side by side").
    maxWorkers: Math.min(4, Math.max(2, availableParallelism())),
    // The caller's SKEIN_*/provider/goose/tmux variables never reach a test.
    setupFiles: ["./test/support/seal-env.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
