#!/usr/bin/env node
// Makes a checkout runnable: installs dependencies when they are missing or
// older than the lock file, regenerates contracts when protos changed, and
// builds incrementally. Node built-ins only: it runs before anything is installed.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });

run(process.execPath, [join(root, "scripts/ensure-installed.mjs")]);
run(process.execPath, [join(root, "scripts/generate.mjs"), "--if-stale"]);
// The first compile of every package takes a while: say so instead of sitting silent.
const firstBuild = ["packages/runtime", "services/session", "services/fleet", "packages/cli"].some((p) => !existsSync(join(root, p, "dist")));
if (firstBuild) console.error("[skein] compiling the TypeScript packages (first build; later builds are incremental)");
run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"]);
