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

/** Runs the command; returns the exit code (0 started or already running, 1 failed, 2 usage). */
export async function fleetStart(argv: readonly string[], env: Env = process.env, cwd = process.cwd()): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const err = (s: string) => process.stderr.write(`skein-fleet-start: ${s}\n`);
  const [name, ...extra] = argv;
  if (!name || extra.length > 0 || name.startsWith("-")) {
    err("usage: skein-fleet-start AGENT   (settings from MOSAIC_* environment variables)");
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
