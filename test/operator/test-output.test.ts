import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { expect, it } from "vitest";

it("npm test's output carries no colour codes when it is not a terminal", { timeout: 120_000 }, () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VITEST") && k !== "NO_COLOR" && k !== "FORCE_COLOR") env[k] = v;
  env.TERM = "xterm-256color";
  // One small test file through the same wrapper `npm test` runs, output piped.
  const r = spawnSync(process.execPath, [join(repoRoot, "scripts/test.mjs"), "packages/runtime/test/broadcast.test.ts"], { cwd: repoRoot, env, encoding: "utf8" });
  const output = `${r.stdout}${r.stderr}`;
  expect(r.status, output).toBe(0);
  expect(output).toMatch(/\d+ passed, 0 failed/);
  expect(output).not.toContain("\x1b[");
});
