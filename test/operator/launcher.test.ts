import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fleetSocketLockPath } from "@skein/host";
import { processesEnd, repoRoot, startLauncher, type Launcher } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";

let launcher: Launcher | undefined;
afterEach(async () => {
  await launcher?.cleanup();
  launcher = undefined;
});

const banner = (l: string) => l.startsWith("Ctrl-C stops the services");

/** A PATH of one directory holding only the links given (name -> target): what a shell with exactly those programs finds. */
function pathOf(dir: string, links: Record<string, string>): string {
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(dir, name));
  return dir;
}

it("npm start: when the launcher's process group is SIGKILLed, both services shut down on their own", async () => {
  launcher = startLauncher({ npmScript: "start" });
  await launcher.waitForLine(banner, 60_000);
  const pids = launcher.servicePids();
  expect([...pids.keys()].sort()).toEqual(["fleet", "session"]);
  const lock = fleetSocketLockPath(launcher.tmuxSocket, launcher.env);
  expect(existsSync(lock)).toBe(true);

  launcher.signalGroup("SIGKILL");
  expect(await processesEnd([...pids.values()])).toBe(true);
  // The fleet shut down gracefully: it released its socket lock itself.
  expect(existsSync(lock)).toBe(false);
});

it("npm run start:fleet: a SIGKILLed launcher takes its one service with it", async () => {
  launcher = startLauncher({ npmScript: "start:fleet" });
  await launcher.waitForLine(banner, 60_000);
  const pids = [...launcher.servicePids().values()];
  expect(pids).toHaveLength(1);
  launcher.signalGroup("SIGKILL");
  expect(await processesEnd(pids)).toBe(true);
});

it("Ctrl-C stops each service exactly once, gracefully, and says the agents keep running in tmux", async () => {
  launcher = startLauncher();
  await launcher.waitForLine(banner, 60_000);
  // A terminal's Ctrl-C reaches the foreground process group: the launcher's.
  launcher.signalGroup("SIGINT");
  const { code } = await launcher.exited;
  expect(code).toBe(0);
  for (const service of ["session", "fleet"]) {
    const records = launcher.stdout.filter((l) => l.startsWith(`[${service}`)).map((l) => JSON.parse(l.slice(l.indexOf("{"))) as { msg: string; reason?: string });
    expect(records.filter((r) => r.msg === "shutting down").map((r) => r.reason)).toEqual(["SIGTERM"]);
    expect(records.filter((r) => r.msg === "stopped")).toHaveLength(1);
  }
  const said = launcher.stderr.join("\n");
  expect(said).toContain("agents keep running in tmux");
  expect(said).toContain(`tmux -L ${launcher.tmuxSocket} ls`);
});

it("prints where each service listens and what to try next", async () => {
  launcher = startLauncher({ env: { SKEIN_AUTH_TOKEN: "s3cret-token" } });
  await launcher.waitForLine(banner, 60_000);
  const ports = new Map<string, number>();
  for (const l of launcher.stdout) {
    const rec = JSON.parse(l.slice(l.indexOf("{"))) as { msg: string; port?: number };
    if (rec.msg === "listening") ports.set(l.startsWith("[session") ? "session" : "fleet", rec.port!);
  }
  const text = launcher.stderr.join("\n");
  expect(text).toMatch(new RegExp(`session\\s+127\\.0\\.0\\.1:${ports.get("session")}`));
  expect(text).toMatch(new RegExp(`fleet\\s+127\\.0\\.0\\.1:${ports.get("fleet")}`));
  // Which form depends on this PATH (the tests below fix it); no provider set: the banner says replies will fail, and what to set.
  expect(text).toMatch(/^ {2}(npx )?skein chat +# talk to an agent$/m);
  expect(text).toMatch(/^Replies will fail until a model provider is set: set SKEIN_PROVIDER \(openai or anthropic\) and SKEIN_MODEL/m);
  expect(text).toContain(`grpcurl -plaintext -H "authorization: Bearer $SKEIN_AUTH_TOKEN" 127.0.0.1:${ports.get("session")} list`);
  // The token itself is never printed.
  expect(text).not.toContain("s3cret-token");
});

it("pretty logs are one line per record, and carry no colour codes with NO_COLOR", async () => {
  launcher = startLauncher({ services: ["session"], env: { SKEIN_LOG_FORMAT: "pretty", NO_COLOR: "1" } });
  await launcher.waitForLine(banner, 60_000);
  launcher.signalGroup("SIGINT");
  await launcher.exited;
  expect(launcher.stdout.length).toBeGreaterThan(2);
  // Every line is a whole record: prefix, time, level, message.
  for (const l of launcher.stdout) expect(l).toMatch(/^\[session\] \[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG|FATAL|TRACE): \S/);
  expect(launcher.stdout.join("\n")).not.toContain("\x1b[");
  expect(launcher.stdout.some((l) => l.includes("listening"))).toBe(true);
});

it.each([
  [
    "SKEIN_METRICS_ADDR alone with both services names the conflict",
    { SKEIN_METRICS_ADDR: "127.0.0.1:19464" },
    "skein: SKEIN_METRICS_ADDR=127.0.0.1:19464 is the metrics address of both session and fleet: give each its own (SKEIN_SESSION_METRICS_ADDR, SKEIN_FLEET_METRICS_ADDR), or use port 0",
  ],
  ["a runtime setting", { SKEIN_LOG_LEVEL: "verbose" }, 'skein: SKEIN_LOG_LEVEL="verbose" must be one of trace, debug, info, warn, error, fatal, silent'],
  ["one service's own setting", { SKEIN_HEARTBEAT_INTERVAL: "often" }, 'skein: SKEIN_HEARTBEAT_INTERVAL="often" is not a whole number'],
])("npm start with a bad setting (%s): exit 2, one line, and no service starts", async (_what, env, line) => {
  launcher = startLauncher({ env });
  const { code } = await launcher.exited;
  expect(code).toBe(2);
  expect(launcher.stderr).toEqual([line]);
  expect(launcher.stdout).toEqual([]);
});

it.each([
  ["without skein on the PATH, the banner says `npx skein chat`", false],
  ["with skein on the PATH (npm link), the banner says `skein chat`", true],
])("%s", async (_title, linked) => {
  const bin = mkdtempSync(join(tmpdir(), "skein-path-"));
  try {
    // The session service alone needs nothing but node from PATH.
    const PATH = pathOf(bin, { node: process.execPath, ...(linked ? { skein: join(repoRoot, "packages/cli/bin/skein.js") } : {}) });
    launcher = startLauncher({ services: ["session"], env: { PATH, SKEIN_PROVIDER: "openai", SKEIN_MODEL: "gpt-test", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" } });
    await launcher.waitForLine(banner, 60_000);
    const text = launcher.stderr.join("\n");
    expect(text).toMatch(linked ? /^ {2}skein chat +# talk to an agent$/m : /^ {2}npx skein chat +# talk to an agent$/m);
    // A provider is set: nothing about providers.
    expect(text).not.toContain("model provider");
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});
