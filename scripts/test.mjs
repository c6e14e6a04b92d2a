#!/usr/bin/env node
// `npm test`: build when needed, check the OS programs the tests drive, then vitest with any
// arguments given (`npm test -- path/to/file.test.ts`). Output that is not a
// terminal gets no colour codes (vitest colours whenever TERM is set).
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
for (const script of ["ensure-built.mjs", "check-test-tools.mjs"]) {
  const r = spawnSync(process.execPath, [join(root, "scripts", script)], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const env = { ...process.env };
if (!process.stdout.isTTY && env.FORCE_COLOR === undefined) env.NO_COLOR = "1";
const r = spawnSync(process.execPath, [join(root, "node_modules/vitest/vitest.mjs"), "run", ...process.argv.slice(2)], { cwd: root, stdio: "inherit", env });
process.exit(r.status ?? 1);
