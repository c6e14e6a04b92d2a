#!/usr/bin/env node
// Runs the services (both, or those named: session, fleet) in the foreground
// with merged, prefixed logs, after making sure the checkout is installed and
// built. SIGINT or SIGTERM stops them gracefully; if one exits on its own, the
// others are stopped too and this process exits with the first one's code.
//
// Each service holds a lifeline (SKEIN_LIFELINE_FD): one end of a socket pair
// whose other end only this process holds. However this process ends, even by
// SIGKILL, the services read EOF on it and shut down gracefully: they never
// outlive their launcher.
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { startedBanner, stoppingNote } from "./lib/banner.mjs";
import { repoRoot } from "./lib/files.mjs";
import { missingProvider, preflight } from "./lib/preflight.mjs";

const root = repoRoot();
const known = ["session", "fleet"];
const services = process.argv.length > 2 ? process.argv.slice(2) : known;
for (const s of services) {
  if (!known.includes(s)) {
    console.error(`usage: start-all.mjs [${known.join("|")}]…   (unknown service ${JSON.stringify(s)})`);
    process.exit(2);
  }
}
try {
  execFileSync(process.execPath, [join(root, "scripts/ensure-built.mjs")], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
} catch {
  process.exit(1);
}
const runtime = await import(pathToFileURL(join(root, "packages/runtime/dist/index.js")).href);
const problem = await preflight(root, services, process.env, runtime);
if (problem) {
  console.error(`skein: ${problem}`);
  process.exit(2);
}

// What the banner suggests: the CLI as the user's shell runs it, and a missing model provider.
const { skeinCommand } = await import(pathToFileURL(join(root, "packages/cli/dist/invocation.js")).href);
const hints = { skein: skeinCommand(), noProvider: services.includes("session") ? await missingProvider(root, process.env, runtime) : undefined };

const pretty = process.stdout.isTTY ? { SKEIN_LOG_FORMAT: process.env.SKEIN_LOG_FORMAT || "pretty" } : {};
const width = Math.max(...services.map((s) => s.length));
const LIFELINE_FD = 3;
let stopping = false;
let firstCode;
const readies = new Map();

const children = services.map((name) => {
  // Own process group: a terminal's Ctrl-C reaches only this script, which
  // then stops each service exactly once.
  const child = spawn(process.execPath, [join(root, `services/${name}/dist/main.js`)], {
    cwd: root,
    env: { ...process.env, ...pretty, SKEIN_LIFELINE_FD: String(LIFELINE_FD) },
    stdio: ["ignore", "pipe", "pipe", "pipe"],
    detached: true,
  });
  const prefix = `[${name.padEnd(width)}] `;
  createInterface({ input: child.stdout }).on("line", (l) => process.stdout.write(prefix + l + "\n"));
  createInterface({ input: child.stderr }).on("line", (l) => process.stderr.write(prefix + l + "\n"));
  createInterface({ input: child.stdio[LIFELINE_FD] }).on("line", (l) => onReady(name, l));
  child.stdio[LIFELINE_FD].on("error", () => undefined);
  child.on("exit", (code, signal) => {
    const c = code ?? (signal ? 1 : 0);
    if (firstCode === undefined && !stopping) {
      // Exit 2 is a bad setting the service has already named in one line.
      if (code !== 2) process.stderr.write(`${prefix}exited unexpectedly (${signal ?? code}); stopping the others\n`);
      firstCode = c || 1;
      stopAll("SIGTERM");
    }
    if (children.every((ch) => ch.exitCode !== null || ch.signalCode !== null)) process.exit(firstCode ?? 0);
  });
  return child;
});

function onReady(name, line) {
  try {
    const msg = JSON.parse(line);
    if (msg.ready) readies.set(name, msg);
  } catch {
    return;
  }
  if (readies.size === services.length && !stopping) {
    process.stderr.write(startedBanner(services.map((s) => readies.get(s)), process.env, hints) + "\n");
  }
}

function stopAll(signal) {
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
}

let signals = 0;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    // A second Ctrl-C forwards a second signal, which ends the services' grace period.
    signals++;
    if (signals === 1 && firstCode === undefined) process.stderr.write(stoppingNote(services, process.env, hints.skein) + "\n");
    stopAll(signals > 1 ? "SIGINT" : "SIGTERM");
  });
}
// npm runs this through `sh -c`; when npm or that shell is killed, this
// process is orphaned and would keep the services running: stop them instead.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent && !stopping) {
    process.stderr.write("[start-all] parent process gone; stopping the services\n");
    stopAll("SIGTERM");
  }
}, 500).unref();
