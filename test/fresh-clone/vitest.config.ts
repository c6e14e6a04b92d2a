import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** `npm run test:fresh-clone`: the fresh-clone test alone (CI runs it after `npm test`). */
export default defineConfig({
  root: fileURLToPath(new URL("../..", import.meta.url)),
  test: {
    include: ["test/fresh-clone/**/*.test.ts"],
    testTimeout: 900_000,
    pool: "forks",
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
