import { defineConfig } from "vitest/config";

// `npm run test:containers` only (not part of `npm test`): builds images and
// runs the compose files in docker or podman; one file, steps in order.
export default defineConfig({
  test: {
    include: ["test/containers/**/*.containers.ts"],
    testTimeout: 10 * 60_000,
    hookTimeout: 45 * 60_000,
    pool: "forks",
    fileParallelism: false,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
