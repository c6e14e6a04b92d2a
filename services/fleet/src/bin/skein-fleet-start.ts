#!/usr/bin/env node
/**
 * skein-fleet-start AGENT: drop-in for the old bash launcher. Reads its
 * MOSAIC_* environment, asks the fleet service to start the agent, prints
 * "already running" when it was, and exits 0, so fleet scripts switch by
 * changing one path.
 */
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";

const env = process.env;
const set = (k: string) => (env[k] === undefined || env[k] === "" ? undefined : env[k]);

function fail(message: string, code = 1): never {
  process.stderr.write(`skein-fleet-start: ${message}\n`);
  process.exit(code);
}

function request(name: string): fleet.StartAgentRequest {
  const runtime = set("MOSAIC_AGENT_RUNTIME") ?? "";
  const command = set("MOSAIC_AGENT_COMMAND") ?? runtime;
  if (command === "") fail("MOSAIC_AGENT_COMMAND (or MOSAIC_AGENT_RUNTIME) must name the command to run", 2);
  const intervalRaw = set("MOSAIC_HEARTBEAT_INTERVAL");
  if (intervalRaw !== undefined && !/^\d+$/.test(intervalRaw)) fail(`MOSAIC_HEARTBEAT_INTERVAL=${JSON.stringify(intervalRaw)} is not a whole number of seconds`, 2);
  return fleet.StartAgentRequest.fromPartial({
    name,
    workdir: set("MOSAIC_AGENT_WORKDIR") ?? process.cwd(),
    command,
    runtime,
    runtimeBinDirs: (set("MOSAIC_RUNTIME_BIN") ?? "").split(":").filter((d) => d !== ""),
    heartbeatDir: set("MOSAIC_HEARTBEAT_RUN_DIR"),
    heartbeatIntervalSeconds: intervalRaw === undefined ? undefined : Number(intervalRaw),
    expectedTmuxSocket: set("MOSAIC_TMUX_SOCKET"),
  });
}

const [name, ...extra] = process.argv.slice(2);
if (!name || extra.length > 0 || name.startsWith("-")) fail("usage: skein-fleet-start AGENT   (settings from MOSAIC_* environment variables)", 2);

const addr = set("SKEIN_FLEET_ADDR") ?? "127.0.0.1:50052";
const md = new Metadata();
const token = set("SKEIN_AUTH_TOKEN");
if (token) md.set("authorization", `Bearer ${token}`);

const client = new fleet.FleetServiceClient(addr, credentials.createInsecure());
client.startAgent(request(name), md, { deadline: Date.now() + 60_000 }, (err: ServiceError | null, res: fleet.StartAgentResponse) => {
  client.close();
  if (err) {
    if (err.code === status.UNAVAILABLE) fail(`cannot reach the fleet service at ${addr} (SKEIN_FLEET_ADDR): ${err.details}`);
    fail(err.details || err.message);
  }
  const a = res.agent!;
  const attach = `tmux -L ${a.tmuxSocket} attach -t =${a.name}`;
  if (res.alreadyRunning) process.stdout.write(`${a.name}: already running (${attach})\n`);
  else process.stdout.write(`${a.name}: started (pane ${a.paneId}, pid ${a.panePid}; ${attach})\n`);
  process.exit(0);
});
