#!/usr/bin/env node
// Makes a checkout runnable: installs dependencies when they are missing or
// older than the lock file, regenerates contracts when protos changed, and
// builds incrementally. Node built-ins only: it runs before anything is installed.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
// Each step reports its own failure (npm's output and a line of advice, generate's
// or tsc's errors): end with its exit code rather than add a stack trace.
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run(process.execPath, [join(root, "scripts/ensure-installed.mjs")]);
run(process.execPath, [join(root, "scripts/generate.mjs"), "--if-stale"]);
// The first compile of every package takes a while: say so instead of sitting silent.
const firstBuild = ["packages/runtime", "packages/goose-sessions", "services/session", "services/fleet", "packages/cli"].some((p) => !existsSync(join(root, p, "dist")));
if (firstBuild) console.error("[skein] compiling the TypeScript packages (first build; later builds are incremental)");
run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"]);
