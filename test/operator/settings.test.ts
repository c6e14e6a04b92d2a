import { createServer, type Server } from "node:net";
import { once } from "node:events";
import { startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";

let svc: ServiceProcess | undefined;
let squatter: Server | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
  squatter?.close();
  squatter = undefined;
});

/** Starts a service expected to refuse its settings; returns its exit code and every line it printed. */
async function refused(name: "session" | "fleet", env: Record<string, string>) {
  svc = await startService(name, env, { expectExit: true });
  const { code } = await svc.exited;
  return { code, lines: [...svc.output, ...svc.logs.map((l) => JSON.stringify(l))] };
}

it.each([
  ["session", { SKEIN_LOG_LEVEL: "verbose" }, 'SKEIN_LOG_LEVEL="verbose" must be one of trace, debug, info, warn, error, fatal, silent'],
  ["fleet", { SKEIN_LOG_FORMAT: "yaml" }, 'SKEIN_LOG_FORMAT="yaml" must be one of auto, json, pretty'],
  ["session", { SKEIN_SESSION_ADDR: "127.0.0.1:notaport" }, 'SKEIN_SESSION_ADDR="127.0.0.1:notaport" has port "notaport": a port is a whole number 0-65535'],
  ["session", { SKEIN_SESSION_ADDR: "garbage" }, 'SKEIN_SESSION_ADDR="garbage" must be host:port (port 0-65535), [ipv6]:port or unix:/path'],
  ["fleet", { SKEIN_FLEET_ADDR: "127.0.0.1:70000" }, 'SKEIN_FLEET_ADDR="127.0.0.1:70000" has port 70000: a port is a whole number 0-65535'],
  ["session", { SKEIN_METRICS_ADDR: "127.0.0.1:99999" }, 'SKEIN_METRICS_ADDR="127.0.0.1:99999" has port 99999: a port is a whole number 0-65535'],
  ["fleet", { SKEIN_FLEET_METRICS_ADDR: "0.0.0.0:9465" }, "SKEIN_FLEET_METRICS_ADDR=0.0.0.0:9465 is not a loopback address: metrics have no auth, so they listen on 127.0.0.1/::1 unless SKEIN_METRICS_PUBLIC=true"],
  ["fleet", { SKEIN_METRICS_PUBLIC: "sometimes" }, 'SKEIN_METRICS_PUBLIC="sometimes" must be true or false'],
  ["session", { SKEIN_REFLECTION_AUTH: "maybe" }, 'SKEIN_REFLECTION_AUTH="maybe" must be one of public, token'],
  ["session", { SKEIN_SHUTDOWN_GRACE_MS: "soon" }, 'SKEIN_SHUTDOWN_GRACE_MS="soon" is not a whole number'],
  // Node's own mkdir -p never returns here (it spins): the service hung at 100 % CPU and ignored SIGTERM.
  ["fleet", { SKEIN_FLEET_STATE_DIR: "/proc/skein-no-such-dir/state" }, `SKEIN_FLEET_STATE_DIR="/proc/skein-no-such-dir/state" cannot be created: ENOENT: no such file or directory, mkdir '/proc/skein-no-such-dir'`],
  ["session", { SKEIN_SESSIONS_DIR: "/proc/skein-no-such-dir/sessions" }, `SKEIN_SESSIONS_DIR="/proc/skein-no-such-dir/sessions" cannot be created: ENOENT: no such file or directory, mkdir '/proc/skein-no-such-dir'`],
  ["fleet", { SKEIN_FLEET_IDLE_AFTER_S: "0" }, "SKEIN_FLEET_IDLE_AFTER_S=0 is outside 1..86400"],
  ["fleet", { SKEIN_FLEET_WEBHOOK_URL: "ftp://example.com/x" }, 'SKEIN_FLEET_WEBHOOK_URL="ftp://example.com/x" must be an http:// or https:// URL'],
  ["fleet", { SKEIN_FLEET_PROMPTS: "/proc/skein-no-such-file.json" }, `SKEIN_FLEET_PROMPTS="/proc/skein-no-such-file.json": ENOENT: no such file or directory, open '/proc/skein-no-such-file.json'`],
  ["fleet", { SKEIN_HEARTBEAT_DIR: "/proc/skein-no-such-dir/beats" }, `SKEIN_HEARTBEAT_DIR="/proc/skein-no-such-dir/beats" cannot be created: ENOENT: no such file or directory, mkdir '/proc/skein-no-such-dir'`],
] as const)("%s with %j: exit 2 and exactly one line naming the variable, the value and the rule", async (name, env, message) => {
  const { code, lines } = await refused(name, env);
  expect(code).toBe(2);
  expect(lines).toEqual([`skein ${name}: ${message}`]);
});

async function occupiedPort(): Promise<number> {
  squatter = createServer();
  squatter.listen(0, "127.0.0.1");
  await once(squatter, "listening");
  return (squatter.address() as { port: number }).port;
}

it("a gRPC port already in use: exit 2 and one line naming the address (no stack, no grpc-js line)", async () => {
  const port = await occupiedPort();
  const { code, lines } = await refused("fleet", { SKEIN_FLEET_ADDR: `127.0.0.1:${port}` });
  expect(code).toBe(2);
  // The fleet logs its own start-up before it binds; nothing else is printed.
  const printed = lines.filter((l) => !l.startsWith("{"));
  expect(printed).toEqual([`skein fleet: SKEIN_FLEET_ADDR=127.0.0.1:${port}: cannot listen: address already in use (another process listens there)`]);
  // grpc-js's own "E No address added" goes to the service log at debug, not to the terminal.
  expect(lines.join("\n")).not.toMatch(/\n\s+at /);
  expect(svc!.output.join("\n")).not.toContain("No address added");
});

it("a metrics port already in use: exit 2 and one line naming the address", async () => {
  const port = await occupiedPort();
  const { code, lines } = await refused("session", { SKEIN_SESSION_METRICS_ADDR: `127.0.0.1:${port}` });
  expect(code).toBe(2);
  expect(lines.filter((l) => !l.startsWith("{"))).toEqual([
    `skein session: SKEIN_SESSION_METRICS_ADDR=127.0.0.1:${port}: cannot listen: address already in use (another process listens there)`,
  ]);
});

it("a unix socket in a directory that does not exist: one line saying so, not a note about privileged ports", async () => {
  const { code, lines } = await refused("session", { SKEIN_SESSION_ADDR: "unix:/nonexistent-skein-dir/session.sock" });
  expect(code).toBe(2);
  expect(lines.filter((l) => !l.startsWith("{"))).toEqual([
    "skein session: SKEIN_SESSION_ADDR=unix:/nonexistent-skein-dir/session.sock: cannot listen: the socket's directory must exist and be writable",
  ]);
});
