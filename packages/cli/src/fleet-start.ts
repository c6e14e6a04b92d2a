/**
 * skein-fleet-start AGENT: drop-in for the old bash launcher. Reads its
 * MOSAIC_* environment, asks the fleet service to start the agent, prints
 * "already running" when it was, and exits 0, so fleet scripts switch by
 * changing one path. Connection settings (SKEIN_FLEET_ADDR, SKEIN_AUTH_TOKEN,
 * SKEIN_TLS_*) are the CLI's.
 */
import { fleet } from "@skein/proto";
import { Endpoint, nonEmpty, settingsFrom, START_TIMEOUT_MS } from "./clients.js";
import { CliError } from "./errors.js";

type Env = Record<string, string | undefined>;

const usage = (message: string) => new CliError(message, 2);

export function startRequest(name: string, env: Env, cwd: string): fleet.StartAgentRequest {
  const set = (k: string) => nonEmpty(env[k]);
  const runtime = set("MOSAIC_AGENT_RUNTIME") ?? "";
  const command = set("MOSAIC_AGENT_COMMAND") ?? runtime;
  if (command === "") throw usage("MOSAIC_AGENT_COMMAND (or MOSAIC_AGENT_RUNTIME) must name the command to run");
  const intervalRaw = set("MOSAIC_HEARTBEAT_INTERVAL");
  if (intervalRaw !== undefined && !/^\d+$/.test(intervalRaw)) {
    throw usage(`MOSAIC_HEARTBEAT_INTERVAL=${JSON.stringify(intervalRaw)} is not a whole number of seconds`);
  }
  return fleet.StartAgentRequest.fromPartial({
    name,
    workdir: set("MOSAIC_AGENT_WORKDIR") ?? cwd,
    command,
    runtime,
    runtimeBinDirs: (set("MOSAIC_RUNTIME_BIN") ?? "").split(":").filter((d) => d !== ""),
    heartbeatDir: set("MOSAIC_HEARTBEAT_RUN_DIR"),
    heartbeatIntervalSeconds: intervalRaw === undefined ? undefined : Number(intervalRaw),
    expectedTmuxSocket: set("MOSAIC_TMUX_SOCKET"),
  });
}

/** The variables it reads, for --help; startRequest is their one reader. */
const VARIABLES: readonly (readonly [string, string])[] = [
  ["MOSAIC_AGENT_COMMAND", "command line to run in the pane (default: MOSAIC_AGENT_RUNTIME)"],
  ["MOSAIC_AGENT_RUNTIME", "runtime label written to the heartbeat (pi, claude, codex, goose, …)"],
  ["MOSAIC_AGENT_WORKDIR", "working directory of the pane (default: the current directory)"],
  ["MOSAIC_RUNTIME_BIN", "directories put first on the pane's PATH, ':'-separated"],
  ["MOSAIC_HEARTBEAT_RUN_DIR", "directory of the heartbeat file (default: the service's)"],
  ["MOSAIC_HEARTBEAT_INTERVAL", "seconds between heartbeats, a whole number (default: the service's)"],
  ["MOSAIC_TMUX_SOCKET", "tmux socket the caller expects; refused when it is not the service's"],
  ["SKEIN_FLEET_ADDR", "fleet service address (default 127.0.0.1:50052)"],
  ["SKEIN_AUTH_TOKEN", "bearer token, when the service wants one"],
  ["SKEIN_TLS_CA, SKEIN_TLS_CERT, SKEIN_TLS_KEY, SKEIN_TLS_SERVER_NAME", "TLS, as for `skein`"],
];

export function fleetStartHelp(): string {
  const width = Math.max(...VARIABLES.filter(([k]) => !k.includes(",")).map(([k]) => k.length));
  return [
    "usage: skein-fleet-start AGENT",
    "",
    "Starts AGENT through the fleet service (idempotent): prints `already running` when it was,",
    "and exits 0 either way; 1 when the start failed, 2 for bad usage or settings.",
    "",
    "Environment:",
    ...VARIABLES.map(([k, v]) => (k.includes(",") ? `  ${k}\n  ${"".padEnd(width)}  ${v}` : `  ${k.padEnd(width)}  ${v}`)),
  ].join("\n");
}

/** Runs the command; returns the exit code (0 started or already running, 1 failed, 2 usage). */
export async function fleetStart(argv: readonly string[], env: Env = process.env, cwd = process.cwd()): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const err = (s: string) => process.stderr.write(`skein-fleet-start: ${s}\n`);
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    out(fleetStartHelp());
    return 0;
  }
  const [name, ...extra] = argv;
  if (!name || extra.length > 0 || name.startsWith("-")) {
    err("usage: skein-fleet-start AGENT   (settings from MOSAIC_* environment variables; see --help)");
    return 2;
  }
  let endpoint: Endpoint<fleet.FleetServiceClient> | undefined;
  try {
    const req = startRequest(name, env, cwd);
    endpoint = new Endpoint("fleet", fleet.FleetServiceClient, settingsFrom({}, env));
    const res = await endpoint.call(endpoint.client.startAgent, req, START_TIMEOUT_MS);
    const a = res.agent!;
    const attach = `tmux -L ${a.tmuxSocket} attach -t =${a.name}`;
    out(res.alreadyRunning ? `${a.name}: already running (${attach})` : `${a.name}: started (pane ${a.paneId}, pid ${a.panePid}; ${attach})`);
    return 0;
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    err(e.message);
    return e.exitCode;
  } finally {
    endpoint?.close();
  }
}
