import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fleet } from "@skein/proto";
import { call, closeClients, connect, killTmuxServer, startService, tmuxServerPid, type ServiceProcess } from "@skein/testkit";
import { processTable, TICK_MS, treeOf } from "./fleet-proc.js";
import type { Table } from "./table.js";

const execFileAsync = promisify(execFile);
const LEGACY = fileURLToPath(new URL("../legacy-launcher.sh", import.meta.url));
const START_AGENTS = 50;
const INTERVAL_S = 1;
const CPU_AGENTS = 200;
const CPU_WINDOW_MS = 45_000;
const AGENT_COMMAND = "sleep 100000";
const TMPFS_MAGIC = 0x01021994;
/** A directory here makes the fleet service write a V8 CPU profile of its whole run into it (node --cpu-prof). */
const PROFILE_DIR = process.env.SKEIN_BENCH_CPU_PROF;

interface Side {
  readonly label: string;
  /** Where the heartbeat files go, as the row says it. */
  readonly hbWhere: string;
  /** Starts agent i; resolves when the launcher returned. */
  start(i: number): Promise<void>;
  /** Processes this side added (tmux server and panes included). */
  processes(): number;
  /** CPU ticks of what keeps heartbeats going (service, or every loop with its reaped children). */
  heartbeatCpuTicks(): number;
  /**
   * CPU ticks the activity tracking costs outside the service's own process:
   * the tmux clients it forks (reaped: its cutime/cstime) and the tmux server
   * answering them. Undefined where nothing tracks activity.
   */
  activityOutsideCpuTicks(): number | undefined;
  readonly hbDir: string;
  close(): Promise<void>;
}

/** "tmpfs" or "disk": heartbeats cost more on a journaling file system (directory updates in the journal per atomic replace). */
function fsKind(dir: string): string {
  return statfsSync(dir).type === TMPFS_MAGIC ? "tmpfs" : "disk";
}

/** A tmpfs directory like $XDG_RUNTIME_DIR (the default heartbeat dir's home), if the machine has one. */
function tmpfsDir(): string | undefined {
  for (const d of [process.env.XDG_RUNTIME_DIR, "/dev/shm"]) if (d && existsSync(d) && fsKind(d) === "tmpfs") return d;
  return undefined;
}

async function grpcSide(dir: string, hbRoot: string): Promise<Side> {
  const socket = `skein-bench-${process.pid}-grpc-${fsKind(hbRoot)}`;
  const hbDir = join(hbRoot, `grpc-hb-${process.pid}`);
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const svc: ServiceProcess = await startService("fleet", {
    SKEIN_TMUX_SOCKET: socket,
    SKEIN_HEARTBEAT_DIR: hbDir,
    SKEIN_FLEET_STATE_DIR: join(dir, `state-${fsKind(hbRoot)}`),
    SKEIN_LOG_LEVEL: "info",
  }, { nodeArgs: PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : [] });
  const client = connect(fleet.FleetServiceClient, svc.address);
  const svcPid = svc.proc.pid!;
  return {
    label: "skein fleet (gRPC)",
    hbWhere: fsKind(hbRoot),
    hbDir,
    start: async (i) => {
      await call(client, client.startAgent, fleet.StartAgentRequest.fromPartial({ name: `agent-${i}`, workdir: work, command: AGENT_COMMAND, runtime: "bench", heartbeatIntervalSeconds: INTERVAL_S }));
    },
    processes: () => {
      const server = tmuxServerPid(socket);
      return server === undefined ? 0 : treeOf(processTable(), [server]).length;
    },
    heartbeatCpuTicks: () => processTable().get(svcPid)?.cpuTicks ?? 0,
    activityOutsideCpuTicks: () => {
      const t = processTable();
      const server = tmuxServerPid(socket);
      // The control client lives as long as the service: its CPU is read live, not when reaped.
      const clients = [...t.values()].filter((p) => p.ppid === svcPid && p.pid !== server).reduce((n, p) => n + p.cpuTicks, 0);
      return (t.get(svcPid)?.childTicks ?? 0) + clients + (server === undefined ? 0 : (t.get(server)?.cpuTicks ?? 0));
    },
    close: async () => {
      // SIGTERM lets a profiled service write its profile; agents stay in tmux until the server is killed.
      await svc.stop(PROFILE_DIR ? "SIGTERM" : "SIGKILL");
      killTmuxServer(socket);
      rmSync(hbDir, { recursive: true, force: true });
    },
  };
}

async function legacySide(dir: string, hbRoot: string): Promise<Side> {
  const socket = `skein-bench-${process.pid}-legacy`;
  const hbDir = join(hbRoot, `legacy-hb-${process.pid}`);
  const work = join(dir, "work");
  mkdirSync(work, { recursive: true });
  const loopPids: number[] = [];
  const env = { ...process.env, MOSAIC_TMUX_SOCKET: socket, MOSAIC_AGENT_WORKDIR: work, MOSAIC_AGENT_COMMAND: AGENT_COMMAND, MOSAIC_AGENT_RUNTIME: "bench", MOSAIC_HEARTBEAT_RUN_DIR: hbDir, MOSAIC_HEARTBEAT_INTERVAL: String(INTERVAL_S) };
  // Each loop runs in its own session (setsid): its sid is its pid, shared by the date/mv/sleep it forks.
  const loops = () => {
    const t = processTable();
    const sids = new Set(loopPids);
    return [...t.values()].filter((p) => sids.has(p.sid) && p.state !== "Z");
  };
  return {
    label: "bash launcher + setsid loop",
    hbWhere: fsKind(hbRoot),
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
    activityOutsideCpuTicks: () => undefined,
    close: async () => {
      for (const pid of loopPids) {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // loop already ended
        }
      }
      killTmuxServer(socket);
      rmSync(hbDir, { recursive: true, force: true });
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
  const outside0 = side.activityOutsideCpuTicks();
  const w0 = performance.now();
  const maxAge = await maxHeartbeatAge(side.hbDir, CPU_AGENTS, CPU_WINDOW_MS);
  const cpuMs = (side.heartbeatCpuTicks() - cpu0) * TICK_MS;
  const outside1 = side.activityOutsideCpuTicks();
  const wallMs = performance.now() - w0;
  const beats = (CPU_AGENTS * wallMs) / (INTERVAL_S * 1000);
  const outsidePct = outside0 === undefined || outside1 === undefined ? undefined : (((outside1 - outside0) * TICK_MS) / wallMs) * 100;
  const pct = (cpuMs / wallMs) * 100;
  return [side.label, side.hbWhere, msPerAgent, procsPerAgent, pct, outsidePct ?? "-", outsidePct === undefined ? pct : pct + outsidePct, cpuMs / (wallMs / 1000), (cpuMs * 1000) / beats, maxAge / 1000];
}

export async function run(): Promise<Table[]> {
  const dir = mkdtempSync(join(tmpdir(), "skein-bench-fleet-"));
  const rows: (string | number)[][] = [];
  const tmpfs = tmpfsDir();
  // The fleet on tmpfs (where $XDG_RUNTIME_DIR, the default heartbeat dir, lives) and on disk; the
  // bash launcher once, on disk, as before (its 200 loops load the machine for the whole window).
  const runs: Array<[(dir: string, hbRoot: string) => Promise<Side>, string]> = [
    ...(tmpfs ? [[grpcSide, tmpfs] as [typeof grpcSide, string]] : []),
    [grpcSide, dir],
    [legacySide, dir],
  ];
  try {
    for (const [make, hbRoot] of runs) {
      const side = await make(dir, hbRoot);
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
      title: `fleet: ${START_AGENTS} agent starts, then ${CPU_AGENTS} agents at ${INTERVAL_S} s heartbeat for ${CPU_WINDOW_MS / 1000} s`,
      columns: [
        "launcher",
        "heartbeat dir on",
        "ms per agent start",
        "processes added per agent",
        "heartbeat CPU % of a core",
        "activity tmux CPU % of a core",
        "heartbeats + activity % of a core",
        "heartbeat CPU ms/s",
        "CPU µs per beat",
        "max heartbeat age s",
      ],
      rows,
      notes: [
        `agents run \`${AGENT_COMMAND}\`; starts are sequential; processes counted over the tmux server tree (+ loop sessions for bash)`,
        "heartbeat CPU, read from outside (/proc/<pid>/stat utime+stime over the window): the fleet service process (everything it does: heartbeats and the activity tracker's one list-panes a second) vs every setsid loop with its reaped date/mv/sleep children",
        "activity tmux CPU: what the activity tracker costs outside the service process: its tmux control-mode client and any tmux client it forks (the service's cutime+cstime once reaped), and the tmux server answering them; the agents print nothing, so no capture-pane is needed (a pane whose output moves costs one more batched capture a second)",
        "tmpfs: where $XDG_RUNTIME_DIR (the default heartbeat dir) lives; disk: the bench's temp dir (ext4 here; also the default ~/.local/state/skein/heartbeats when $XDG_RUNTIME_DIR is unset)",
        "max heartbeat age: now minus the oldest heartbeat file's mtime, sampled every 250 ms over the window",
      ],
    },
  ];
}
