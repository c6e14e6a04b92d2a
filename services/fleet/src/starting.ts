import { dirname, join } from "node:path";
import { isSameProcess, readProcStat, readProcStatSync } from "@skein/host";
import { FailedPreconditionError, fileSystemFault } from "@skein/runtime";
import type { Logger } from "pino";
import { newAgent, type Agent, type AgentSnapshot, type AgentSpec } from "./agent.js";
import type { AgentRegistry, PaneRun } from "./agent-registry.js";
import { adoptPane } from "./adoption.js";
import type { Attention } from "./attention.js";
import type { FleetConfig } from "./config.js";
import type { KeptOutput } from "./kept-output.js";
import { launchCommand, resolveBinDirs } from "./launch-command.js";
import { checkLaunchFits } from "./launch-size.js";
import { DEFAULT_MAX_RESTARTS } from "./restart-policy.js";
import type { Supervisor } from "./supervisor.js";
import { TmuxError, type Tmux } from "./tmux.js";
import { isDirectory } from "./validate.js";
import type { WorktreeRequest, Worktrees } from "./worktrees.js";

/** An agent spec as requested: interval, heartbeat dir and max restarts may be left to the defaults. */
export type StartRequest = Omit<AgentSpec, "heartbeatIntervalSeconds" | "heartbeatFile" | "maxRestarts" | "worktree"> & {
  /** Run in a new worktree of this repository (then `workdir` is its path). */
  readonly worktree?: WorktreeRequest | undefined;
  readonly heartbeatIntervalSeconds?: number | undefined;
  readonly heartbeatDir?: string | undefined;
  readonly maxRestarts?: number | undefined;
};

/** Runs an agent's command in tmux: a new session, or again in its pane (a restart). */
export class Launcher {
  constructor(
    private readonly config: FleetConfig,
    private readonly tmux: Tmux,
    private readonly kept: KeptOutput,
    private readonly attention: Attention,
  ) {}

  /** Refuses, before anything is made, a request whose launch line tmux could not take. */
  checkFits(req: StartRequest): void {
    // Every dir that could be baked into the agent's PATH, existing or not (the size check's worst case).
    const candidates = resolveBinDirs({ request: req.runtimeBinDirs, configured: this.config.runtimeBinDirs, home: this.config.home }, () => true);
    checkLaunchFits({ ...req, env: { ...req.env, ...this.attention.launchEnvShape(req.name) }, binDirs: [...candidates, this.attention.binDir] });
  }

  /** Runs the agent's command; the caller records the run (AgentRegistry.change). */
  async launch(a: Agent, how: "new" | "respawn"): Promise<PaneRun> {
    const binDirs = resolveBinDirs({ request: a.spec.runtimeBinDirs, configured: this.config.runtimeBinDirs, home: this.config.home }, isDirectory);
    // skein-fleet-signal on PATH (after the requested dirs: the old launcher's PATH prefix stays), the agent's name and secret in its environment.
    const shell = launchCommand({ binDirs: [...binDirs, this.attention.binDir], env: { ...a.spec.env, ...this.attention.launchEnv(a) }, command: a.spec.command });
    // What was kept of an earlier run must not pass for this one's output.
    await this.kept.remove(a.spec.name);
    const created = how === "respawn" ? await this.respawnOrCreate(a.spec, shell) : await this.tmux.newSession(a.spec.name, a.spec.workdir, shell);
    const stat = await readProcStat(created.panePid);
    return { paneId: created.paneId, panePid: created.panePid, pidStartTicks: stat?.startTicks ?? -1 };
  }

  /** Again in the agent's pane; in a new session when the old one is gone. */
  private async respawnOrCreate(spec: AgentSpec, shell: string): Promise<{ paneId: string; panePid: number }> {
    try {
      return await this.tmux.respawn(spec.name, spec.workdir, shell);
    } catch (err) {
      if (!(err instanceof TmuxError && err.isMissing)) throw err;
      return this.tmux.newSession(spec.name, spec.workdir, shell);
    }
  }
}

export interface StartDeps {
  readonly config: FleetConfig;
  readonly log: Logger;
  readonly tmux: Tmux;
  readonly registry: AgentRegistry;
  readonly supervisor: Supervisor;
  readonly worktrees: Worktrees;
  readonly launcher: Launcher;
  /** Where the state file lies (named in a fault that keeps it from recording a start). */
  readonly statePath: string;
}

/**
 * StartAgent under the agent's lock: a live session is reported (adopted when
 * the service did not know it), anything else is launched anew, in a worktree
 * made for it when asked. Nothing half-made stays behind a failed start.
 */
export async function startAgent(d: StartDeps, req: StartRequest): Promise<{ agent: AgentSnapshot; alreadyRunning: boolean }> {
  const pane = await d.tmux.pane(req.name);
  if (pane && !pane.dead) {
    let a = d.registry.get(req.name);
    if (!a || a.paneId !== pane.paneId) {
      // A session made outside the service (or before the state file knew it): take it over as is.
      a = await adoptPane(d, pane, a);
      d.registry.publish("adopted", a, `adopted ${a.state} agent from tmux socket ${d.config.socket}`);
      await d.registry.persist();
      d.log.info({ agent: req.name, state: a.state, panePid: a.panePid }, "adopted agent");
    }
    return { agent: d.registry.view(a), alreadyRunning: true };
  }
  const old = d.registry.get(req.name);
  if (!pane && old?.rt.paneLost && isSameProcess(readProcStatSync(old.panePid), old.pidStartTicks)) {
    throw new FailedPreconditionError(`agent ${req.name} still runs (pid ${old.panePid}) without its tmux session; StopAgent ends it, then start it again`);
  }
  // A dead pane kept by remain-on-exit is not "running": replace the session.
  if (pane) await d.tmux.killSession(req.name);
  if (old) d.supervisor.cancelRestart(old);
  // The same agent started again keeps its worktree; a new one (or a name reused after removal) gets a fresh one.
  const worktree = old?.spec.worktree ?? (req.worktree ? await d.worktrees.create(req.name, req.worktree) : undefined);
  const made = worktree !== undefined && worktree !== old?.spec.worktree;

  const a = newAgent({
    name: req.name,
    workdir: worktree?.path ?? req.workdir,
    command: req.command,
    runtime: req.runtime,
    runtimeBinDirs: [...req.runtimeBinDirs],
    env: { ...req.env },
    heartbeatIntervalSeconds: req.heartbeatIntervalSeconds ?? d.config.heartbeatIntervalSeconds,
    heartbeatFile: join(req.heartbeatDir ?? d.config.heartbeatDir, `${req.name}.hb`),
    restartPolicy: req.restartPolicy,
    maxRestarts: req.maxRestarts || DEFAULT_MAX_RESTARTS,
    notifyUrl: req.notifyUrl,
    worktree,
  });
  let run: PaneRun;
  try {
    run = await d.launcher.launch(a, "new");
  } catch (err) {
    // Nothing half-made: a worktree made for this start goes with it.
    if (made) await d.worktrees.discard(worktree).catch((e: unknown) => d.log.warn({ err: e, agent: req.name }, "could not remove the worktree of a failed start"));
    if (err instanceof TmuxError && /duplicate session/.test(err.stderr)) {
      throw new FailedPreconditionError(`a tmux session named ${req.name} appeared on socket ${d.config.socket} while starting; retry`);
    }
    throw err;
  }
  d.registry.set(a);
  const message = `started in pane ${run.paneId} (pid ${run.panePid})`;
  const failed = await d.registry.change(a, { state: "running", run, startedAt: new Date(), launched: true }, { record: "first", beat: "ok", event: { type: "started", message } });
  if (failed) await undoUnrecorded(d, a, old, failed);
  d.log.info({ agent: req.name, pane: a.paneId, panePid: a.panePid }, "agent started");
  return { agent: d.registry.view(a), alreadyRunning: false };
}

/**
 * A started agent the state file cannot record (a full disk) is not left
 * running unknown to it: its session is ended, the previous record put back,
 * and StartAgent answers with the fault (RESOURCE_EXHAUSTED for no space).
 */
async function undoUnrecorded(d: StartDeps, a: Agent, previous: Agent | undefined, failed: Error): Promise<never> {
  await d.tmux.killSession(a.spec.name).catch((err: unknown) => d.log.warn({ err, agent: a.spec.name }, "could not end an agent that was not recorded"));
  if (previous) d.registry.set(previous);
  else d.registry.delete(a.spec.name);
  d.log.warn({ agent: a.spec.name, path: d.statePath, reason: failed.message }, "agent not started: the state file cannot record it");
  throw fileSystemFault(failed, "the fleet state", dirname(d.statePath)) ?? failed;
}
