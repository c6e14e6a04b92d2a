import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fleet } from "@skein/proto";
import { call, closeClients, connect, killTmuxServer, startService, type ServiceProcess } from "@skein/testkit";
import { processTable, TICK_MS, treeOf } from "./fleet-proc.js";
import type { Table } from "./table.js";

const execFileAsync = promisify(execFile);
const LEGACY = fileURLToPath(new URL("../legacy-launcher.sh", import.meta.url));
const START_AGENTS = 50;
const CPU_AGENTS = 200;
const CPU_WINDOW_MS = 60_000;
const AGENT_COMMAND = "sleep 100000";

interface Side {
  readonly label: string;
  /** Starts agent i; resolves when the launcher returned. */
  start(i: number): Promise<void>;
  /** Processes this side added (tmux server and panes included). */
  processes(): number;
  /** CPU ticks of what keeps heartbeats going (service, or every loop with its reaped children). */
  heartbeatCpuTicks(): number;
  readonly hbDir: string;
  close(): Promise<void>;
}

function tmuxServerPid(socket: string): number | undefined {
  try {
    return Number(execFileSync("tmux", ["-L", socket, "display-message", "-p", "#{pid}"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
  } catch {
    return undefined;
  }
}

async function grpcSide(dir: string, interval: number): Promise<Side> {
  const socket = `skein-bench-${process.pid}-grpc-${interval}`;
  const hbDir = join(dir, `grpc-hb-${interval}`);
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const svc: ServiceProcess = await startService("fleet", {
    SKEIN_TMUX_SOCKET: socket,
    SKEIN_HEARTBEAT_DIR: hbDir,
    SKEIN_FLEET_STATE_DIR: join(dir, `state-${interval}`),
    SKEIN_LOG_LEVEL: "info",
  });
  const client = connect(fleet.FleetServiceClient, svc.address);
  const svcPid = svc.proc.pid!;
  return {
    label: "skein fleet (gRPC)",
    hbDir,
    start: async (i) => {
      await call(client, client.startAgent, fleet.StartAgentRequest.fromPartial({ name: `agent-${i}`, workdir: work, command: AGENT_COMMAND, runtime: "bench", heartbeatIntervalSeconds: interval }));
    },
    processes: () => {
      const server = tmuxServerPid(socket);
      return server === undefined ? 0 : treeOf(processTable(), [server]).length;
    },
    heartbeatCpuTicks: () => processTable().get(svcPid)?.cpuTicks ?? 0,
    close: async () => {
      await svc.stop("SIGKILL");
      killTmuxServer(socket);
    },
  };
}

async function legacySide(dir: string, interval: number): Promise<Side> {
  const socket = `skein-bench-${process.pid}-legacy-${interval}`;
  const hbDir = join(dir, `legacy-hb-${interval}`);
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const loopPids: number[] = [];
  const env = { ...process.env, MOSAIC_TMUX_SOCKET: socket, MOSAIC_AGENT_WORKDIR: work, MOSAIC_AGENT_COMMAND: AGENT_COMMAND, MOSAIC_AGENT_RUNTIME: "bench", MOSAIC_HEARTBEAT_RUN_DIR: hbDir, MOSAIC_HEARTBEAT_INTERVAL: String(interval) };
  // Each loop runs in its own session (setsid): its sid is its pid, shared by the date/mv/sleep it forks.
  const loops = () => {
    const t = processTable();
    const sids = new Set(loopPids);
    return [...t.values()].filter((p) => sids.has(p.sid) && p.state !== "Z");
  };
  return {
    label: "bash launcher + setsid loop",
    hbDir,
    start: async (i) => {
      await execFileAsync(LEGACY, [`agent-${i}`], { env });
      loopPids.push(Number(readFileSync(join(hbDir, `agent-${i}.loop.pid`), "utf8").trim()));
    },
    processes: () => {
      const server = tmuxServerPid(socket);
      return (server === undefined ? 0 : treeOf(processTable(), [server]).length) + loops().length;
    },
    heartbeatCpuTicks: () => {
      const t = processTable();
      return loopPids.reduce((sum, pid) => sum + (t.get(pid) ? t.get(pid)!.cpuTicks + t.get(pid)!.childTicks : 0), 0) + loops().filter((p) => !loopPids.includes(p.pid)).reduce((s, p) => s + p.cpuTicks, 0);
    },
    close: async () => {
      for (const pid of loopPids) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // loop already ended
        }
      }
      killTmuxServer(socket);
    },
  };
}

/** Oldest heartbeat file (by mtime), sampled every 250 ms while `untilMs` lasts. */
async function maxHeartbeatAge(hbDir: string, count: number, untilMs: number): Promise<number> {
  let max = 0;
  const end = Date.now() + untilMs;
  while (Date.now() < end) {
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      try {
        max = Math.max(max, now - statSync(join(hbDir, `agent-${i}.hb`)).mtimeMs);
      } catch {
        max = Infinity;
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return max;
}

async function measure(side: Side): Promise<(string | number)[]> {
  const before = side.processes();
  const t0 = performance.now();
  for (let i = 0; i < START_AGENTS; i++) await side.start(i);
  const msPerAgent = (performance.now() - t0) / START_AGENTS;
  const procsPerAgent = (side.processes() - before) / START_AGENTS;
  for (let i = START_AGENTS; i < CPU_AGENTS; i++) await side.start(i);
  await new Promise((r) => setTimeout(r, 2_000));
  const cpu0 = side.heartbeatCpuTicks();
  const w0 = performance.now();
  const maxAge = await maxHeartbeatAge(side.hbDir, CPU_AGENTS, CPU_WINDOW_MS);
  const cpuMs = (side.heartbeatCpuTicks() - cpu0) * TICK_MS;
  const wallMs = performance.now() - w0;
  return [side.label, msPerAgent, procsPerAgent, (cpuMs / wallMs) * 100, cpuMs / (wallMs / 1000), maxAge / 1000];
}

export async function run(): Promise<Table[]> {
  const dir = mkdtempSync(join(tmpdir(), "skein-bench-fleet-"));
  const rows: (string | number)[][] = [];
  try {
    for (const make of [grpcSide, legacySide]) {
      const side = await make(dir, 1);
      try {
        rows.push(await measure(side));
      } finally {
        await side.close();
        closeClients();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return [
    {
      title: `fleet: ${START_AGENTS} agent starts, then ${CPU_AGENTS} agents at 1 s heartbeat for ${CPU_WINDOW_MS / 1000} s`,
      columns: ["launcher", "ms per agent start", "processes added per agent", "heartbeat CPU %", "heartbeat CPU ms/s", "max heartbeat age s"],
      rows,
      notes: [
        `agents run \`${AGENT_COMMAND}\`; starts are sequential; processes counted over the tmux server tree (+ loop sessions for bash)`,
        "heartbeat CPU: the fleet service process (everything it does) vs every setsid loop with its reaped date/mv/sleep children",
        "max heartbeat age: now minus the oldest heartbeat file's mtime, sampled every 250 ms over the window",
      ],
    },
  ];
}
