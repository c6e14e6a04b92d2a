import { join } from "node:path";
import { isSameProcess, readProcStat, readProcStatSync } from "@skein/host";
import { FailedPreconditionError } from "@skein/runtime";
import type { Logger } from "pino";
import { newAgent, newRuntime, type Agent, type AgentRecord, type AgentSpec } from "./agent.js";
import type { AgentRegistry } from "./agent-registry.js";
import type { FleetConfig } from "./config.js";
import { DEFAULT_MAX_RESTARTS } from "./restart-policy.js";
import type { StateStore } from "./state-store.js";
import type { Supervisor } from "./supervisor.js";
import { TmuxMissingError, type PaneInfo, type Tmux } from "./tmux.js";
import { AGENT_NAME } from "./validate.js";

export interface AdoptionDeps {
  readonly config: FleetConfig;
  readonly log: Logger;
  readonly tmux: Tmux;
  readonly store: StateStore;
  readonly registry: AgentRegistry;
  readonly supervisor: Supervisor;
}

/**
 * After a (re)start of the service: every session on the socket becomes a
 * tracked agent again (with what the state file remembers of it), and agents
 * the state file knows but tmux does not are settled: still running without
 * their pane, or ended while no service watched.
 */
export async function adoptAll(d: AdoptionDeps): Promise<void> {
  const saved = await d.store.load();
  await cleanEnvironment(d, undefined);
  let panes: PaneInfo[] = [];
  try {
    panes = await d.tmux.sessions();
  } catch (err) {
    // No tmux on PATH is logged (once) by the health check; anything else is news.
    if (!(err instanceof FailedPreconditionError)) d.log.warn({ err }, "could not list tmux sessions; starting with none adopted");
  }
  const onSocket = new Set<string>();
  for (const pane of panes) {
    if (!AGENT_NAME.test(pane.session)) {
      d.log.warn({ session: pane.session }, "session name is not a valid agent name; left alone");
      continue;
    }
    onSocket.add(pane.session);
    await cleanEnvironment(d, pane.session);
    const a = await adoptPane(d, pane, saved.get(pane.session));
    if (a.restartDueAt && a.state === "exited") d.supervisor.scheduleRestart(a);
    // No watcher can be subscribed yet (the service is not serving): the log says it.
    d.log.info({ agent: a.spec.name, state: a.state, panePid: a.panePid }, "adopted agent");
  }
  for (const [name, rec] of saved) {
    if (onSocket.has(name)) continue;
    const a: Agent = { ...rec, rt: newRuntime() };
    d.registry.set(a);
    if (rec.state !== "running" && rec.state !== "unknown") continue;
    if (isSameProcess(readProcStatSync(rec.panePid), rec.pidStartTicks)) {
      // Its session went away (while no service watched) but its process runs on.
      await d.registry.change(a, { state: "unknown", paneLost: true }, { beat: "unknown" });
      d.log.warn({ agent: name, panePid: a.panePid }, "agent's tmux session is gone but its process runs on");
    } else {
      // It ended while no service watched it; its heartbeat must stop claiming "ok".
      a.restartDueAt = undefined;
      await d.registry.change(a, { state: "exited", exitStatus: undefined, endedAt: new Date() }, { beat: "exited" });
    }
  }
  // A service that has never run an agent leaves no state file behind.
  if (d.registry.size > 0) await d.registry.persist();
}

/**
 * Tracks the agent in the pane as running (tmux is the source of truth for
 * what runs), keeping what the record knows of it. A pane already dead is
 * left to the supervisor's first tick, unless the record shows its exit was
 * handled before the service restarted.
 */
export async function adoptPane(d: Pick<AdoptionDeps, "config" | "registry">, pane: PaneInfo, rec: AgentRecord | undefined): Promise<Agent> {
  const spec: AgentSpec = rec?.spec ?? {
    name: pane.session,
    workdir: pane.currentPath,
    command: pane.startCommand,
    runtime: "",
    runtimeBinDirs: [],
    env: {},
    heartbeatIntervalSeconds: d.config.heartbeatIntervalSeconds,
    heartbeatFile: join(d.config.heartbeatDir, `${pane.session}.hb`),
    restartPolicy: "never",
    maxRestarts: DEFAULT_MAX_RESTARTS,
  };
  const samePid = rec !== undefined && rec.paneId === pane.paneId && rec.panePid === pane.panePid;
  const a: Agent = rec ? { ...rec, spec, rt: newRuntime() } : newAgent(spec, pane);
  d.registry.set(a);
  const run = { paneId: pane.paneId, panePid: pane.panePid };
  if (pane.dead) {
    if (!(samePid && rec.state === "exited")) await d.registry.change(a, { state: "running", run: { ...run, pidStartTicks: -1 } });
    return a;
  }
  const stat = await readProcStat(pane.panePid);
  const verified = samePid && isSameProcess(stat, rec.pidStartTicks);
  const pidStartTicks = verified ? rec.pidStartTicks : (stat?.startTicks ?? -1);
  await d.registry.change(a, { state: "running", run: { ...run, pidStartTicks }, startedAt: verified ? undefined : new Date() });
  return a;
}

/** The tmux server's global environment, or a session's, holds only what SKEIN_AGENT_ENV_PASSTHROUGH allows (panes inherit both). */
async function cleanEnvironment(d: Pick<AdoptionDeps, "tmux" | "log">, session: string | undefined): Promise<void> {
  const where = session === undefined ? "the tmux server's global environment" : `the environment of tmux session ${session}`;
  try {
    const removed = await d.tmux.cleanEnvironment(session);
    if (removed.length > 0) d.log.warn({ removed }, `removed variables outside SKEIN_AGENT_ENV_PASSTHROUGH from ${where}`);
  } catch (err) {
    // Without tmux there is no environment to clean; its absence is logged once, by TmuxAvailability.
    if (err instanceof TmuxMissingError) return;
    d.log.warn({ err }, `could not clean ${where}`);
  }
}
