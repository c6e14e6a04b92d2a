#!/usr/bin/env node
// Installs dependencies when they are missing or when what decides them
// changed (the lock file, or a manifest's dependency fields), so every npm
// script works on a fresh clone, and editing a script in package.json does
// not reinstall. Node built-ins only: it runs before anything is installed.
// Which dependencies may run install scripts is declared in package.json's
// allowScripts (npm 11).
import { spawn } from "node:child_process";
import { installAdvice } from "./lib/install-advice.mjs";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { repoRoot } from "./lib/files.mjs";

const root = repoRoot();
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const DEP_FIELDS = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies", "overrides", "workspaces", "allowScripts"];

const stamp = join(root, "node_modules/.skein-install.hash");
const hiddenLock = join(root, "node_modules/.package-lock.json");
const want = installHash();
const have = existsSync(stamp) ? readFileSync(stamp, "utf8") : adoptedInstall();
if (have !== want) {
  const command = existsSync(join(root, "package-lock.json")) ? "ci" : "install";
  console.error(`[skein] installing dependencies (npm ${command})`);
  const { code, output } = await runNpm([command, "--prefer-offline", "--no-audit", "--no-fund"]);
  if (code !== 0) {
    // npm has said what went wrong at length: add one line saying what to do, and no stack trace.
    console.error(`skein: npm ${command} failed (exit ${code}): ${installAdvice(output)}`);
    process.exit(code);
  }
  writeFileSync(stamp, want);
}

/** Runs npm with its output shown as it comes (on stderr) and kept, for installAdvice. */
async function runNpm(args) {
  const child = spawn(npm, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream.on("data", (chunk) => {
      process.stderr.write(chunk);
      output += chunk;
    });
  }
  const code = await new Promise((resolve) => {
    child.once("error", (err) => resolve((output += String(err), 127)));
    child.once("close", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  return { code, output };
}

/** One hash over the lock file and every manifest's dependency fields. */
function installHash() {
  const h = createHash("sha256");
  const lockPath = join(root, "package-lock.json");
  h.update(existsSync(lockPath) ? readFileSync(lockPath) : "");
  const manifest = (p) => JSON.parse(readFileSync(join(root, p), "utf8"));
  const top = manifest("package.json");
  for (const p of ["package.json", ...top.workspaces.map((w) => `${w}/package.json`)]) {
    const m = existsSync(join(root, p)) ? manifest(p) : {};
    h.update(p + "\0" + JSON.stringify(DEP_FIELDS.map((f) => m[f] ?? null)) + "\0");
  }
  return h.digest("hex");
}

/** An install made before the stamp existed counts when npm's own record is newer than the lock file. */
function adoptedInstall() {
  const lockPath = join(root, "package-lock.json");
  if (!existsSync(hiddenLock) || !existsSync(lockPath)) return undefined;
  if (statSync(hiddenLock).mtimeMs < statSync(lockPath).mtimeMs) return undefined;
  writeFileSync(stamp, want);
  return want;
}
