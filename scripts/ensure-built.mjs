#!/usr/bin/env node
// Makes a checkout runnable: installs dependencies when they are missing or
// older than the lock file, regenerates contracts when protos changed, and
// builds incrementally. Node built-ins only: it runs before anything is installed.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

const installed = join(root, "node_modules/.package-lock.json");
const manifests = ["package.json", "package-lock.json", ...workspaceManifests()].map((p) => join(root, p));
if (!existsSync(installed) || manifests.some((m) => mtime(m) > mtime(installed))) {
  const lock = existsSync(join(root, "package-lock.json"));
  console.error(`[skein] installing dependencies (npm ${lock ? "ci" : "install"})`);
  run(npm, [lock ? "ci" : "install", "--no-audit", "--no-fund"]);
}
run(process.execPath, [join(root, "scripts/generate.mjs"), "--if-stale"]);
run(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-b"]);

function workspaceManifests() {
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  return workspaces.map((w) => `${w}/package.json`);
}
