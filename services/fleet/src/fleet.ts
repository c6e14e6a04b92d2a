import { dirname, join } from "node:path";
import {
  acquireInstanceLock,
  endProcesses,
  fleetSocketLockPath,
  InstanceLockedError,
  isSameProcess,
  KeyedLock,
  makeDirectory,
  readProcStat,
  readProcStatSync,
  sessionMembers,
  signalGroup,
  signalProcess,
  tmuxSocketDir,
  waitUntil,
} from "@skein/host";
import { Broadcaster, ConfigError, FailedPreconditionError, fileSystemFault, NotFoundError, sleep } from "@skein/runtime";
import type { Logger } from "pino";
import { newAgent, newObservation, newRuntime, snapshot, type Agent, type AgentRecord, type AgentSnapshot, type AgentSpec, type FleetEvent } from "./agent.js";
import { Attention } from "./attention.js";
import type { FleetConfig } from "./config.js";
import { removeHeartbeat } from "./heartbeat.js";
import { KeptOutput } from "./kept-output.js";
import { launchCommand, resolveBinDirs } from "./launch-command.js";
import { checkLaunchFits } from "./launch-size.js";
import { DEFAULT_MAX_RESTARTS } from "./restart-policy.js";
import { lastLines } from "./screen-text.js";
import { StateStore } from "./state-store.js";
import { Supervisor } from "./supervisor.js";
import { Tmux, TmuxError, TmuxMissingError, type PaneInfo } from "./tmux.js";
import { AGENT_NAME, isDirectory } from "./validate.js";
import { Worktrees, type WorktreeRequest } from "./worktrees.js";

/** An agent spec as requested: interval, heartbeat dir and max restarts may be left to the defaults. */
export type StartRequest = Omit<AgentSpec, "heartbeatIntervalSeconds" | "heartbeatFile" | "maxRestarts" | "worktree"> & {
  /** Run in a new worktree of this repository (then `workdir` is its path). */
  readonly worktree?: WorktreeRequest | undefined;
  readonly heartbeatIntervalSeconds?: number | undefined;
  readonly heartbeatDir?: string | undefined;
  readonly maxRestarts?: number | undefined;
};

/** Pause between typed text and Enter: agent TUIs take a fast Enter as part of a paste. */
const ENTER_DELAY_MS = 150;
const STOP_POLL_MS = 100;
/** After SIGKILL the kernel needs a moment to tear the processes down. */
const AFTER_KILL_WAIT_MS = 3_000;
/** How long the tmux server may take to reap a stopped agent's process, nudged each poll. */
const REAP_WAIT_MS = 5_000;

/**
 * The fleet: agents in tmux sessions on one socket, their heartbeats and
 * supervision. Operations on one agent are serialised; tmux is the source of
 * truth for what runs, the state file for what tmux does not know.
 */
export class Fleet {
  private releaseSocket: (() => Promise<void>) | undefined;
  readonly events = new Broadcaster<FleetEvent>();
  private readonly tmux: Tmux;
  private readonly agents = new Map<string, Agent>();
  private readonly lock = new KeyedLock();
  private readonly store: StateStore;
  private readonly kept: KeptOutput;
  private readonly supervisor: Supervisor;
  private readonly attention: Attention;
  private readonly worktrees: Worktrees;

  constructor(
    private readonly config: FleetConfig,
    private readonly log: Logger,
  ) {
    this.tmux = new Tmux(config.socket, config.tmuxEnv, config.keepLines);
    this.store = new StateStore(config.stateDir, config.socket, log);
    this.kept = new KeptOutput(config.stateDir, this.tmux, config.keepLines, log);
    this.supervisor = new Supervisor({
      tmux: this.tmux,
      log,
      lock: this.lock,
      events: this.events,
      agents: () => this.agents.values(),
      persist: () => void this.persist(),
      keepScreen: (a) => this.kept.keep(a.spec.name),
      relaunch: (a) => this.launch(a, "respawn"),
    });
    this.attention = new Attention({
      config,
      log,
      tmux: this.tmux,
      events: this.events,
      agents: () => this.agents.values(),
      find: (name) => this.agents.get(name),
      changed: (a, message) => {
        this.supervisor.publish("activity", a, message);
        if (a.state === "running") this.supervisor.beat(a, "ok");
        void this.persist();
      },
    });
    this.worktrees = new Worktrees(config.worktreesDir, join(config.stateDir, `fleet-${config.socket}-setup`));
  }

  get socket(): string {
    return this.config.socket;
  }

  /** Where a request's heartbeat_dir may lie. */
  get heartbeatRoots(): readonly string[] {
    return this.config.heartbeatRoots;
  }

  /** Adopts every session already on the socket, then starts supervising; a failure half way gives the socket back. */
  async open(): Promise<void> {
    await makeConfiguredDirectories(this.config);
    const release = await claimSocket(this.socket);
    try {
      await this.adoptAndSupervise();
      await this.attention.open();
    } catch (err) {
      this.supervisor.stop();
      await this.attention.close();
      await release();
      throw err;
    }
    this.releaseSocket = release;
  }

  private async adoptAndSupervise(): Promise<void> {
    const saved = await this.store.load();
    await this.cleanEnvironment();
    let panes: PaneInfo[] = [];
    try {
      panes = await this.tmux.sessions();
    } catch (err) {
      // No tmux on PATH is logged (once) by the health check; anything else is news.
      if (!(err instanceof FailedPreconditionError)) this.log.warn({ err }, "could not list tmux sessions; starting with none adopted");
    }
    const onSocket = new Set<string>();
    for (const pane of panes) {
      if (!AGENT_NAME.test(pane.session)) {
        this.log.warn({ session: pane.session }, "session name is not a valid agent name; left alone");
        continue;
      }
      onSocket.add(pane.session);
      await this.cleanEnvironment(pane.session);
      const a = await this.adopt(pane, saved.get(pane.session));
      this.agents.set(a.spec.name, a);
      if (a.restartDueAt && a.state === "exited") this.supervisor.scheduleRestart(a);
      // No watcher can be subscribed yet (the service is not serving): the log says it.
      this.log.info({ agent: a.spec.name, state: a.state, panePid: a.panePid }, "adopted agent");
    }
    for (const [name, rec] of saved) {
      if (onSocket.has(name)) continue;
      const a: Agent = { ...rec, rt: newRuntime() };
      this.agents.set(name, a);
      if ((rec.state === "running" || rec.state === "unknown") && isSameProcess(readProcStatSync(rec.panePid), rec.pidStartTicks)) {
        // Its session went away (while no service watched) but its process runs on.
        this.supervisor.markPaneLost(a);
        this.supervisor.beat(a, "unknown");
        this.log.warn({ agent: name, panePid: a.panePid }, "agent's tmux session is gone but its process runs on");
      } else if (rec.state === "running" || rec.state === "unknown") {
        // It ended while no service watched it; its heartbeat must stop claiming "ok".
        a.state = "exited";
        a.exitStatus = undefined;
        a.restartDueAt = undefined;
        a.endedAt = new Date();
        this.supervisor.beat(a, "exited");
      }
    }
    // A service that has never run an agent leaves no state file behind.
    if (this.agents.size > 0) await this.persist();
    this.supervisor.start();
  }

  /** The tmux server's global environment, or a session's, holds only what SKEIN_AGENT_ENV_PASSTHROUGH allows (panes inherit both). */
  private async cleanEnvironment(session?: string): Promise<void> {
    const where = session === undefined ? "the tmux server's global environment" : `the environment of tmux session ${session}`;
    try {
      const removed = await this.tmux.cleanEnvironment(session);
      if (removed.length > 0) this.log.warn({ removed }, `removed variables outside SKEIN_AGENT_ENV_PASSTHROUGH from ${where}`);
    } catch (err) {
      // Without tmux there is no environment to clean; its absence is logged once, by TmuxAvailability.
      if (err instanceof TmuxMissingError) return;
      this.log.warn({ err }, `could not clean ${where}`);
    }
  }

  private async adopt(pane: PaneInfo, rec: AgentRecord | undefined): Promise<Agent> {
    const spec: AgentSpec = rec?.spec ?? {
      name: pane.session,
      workdir: pane.currentPath,
      command: pane.startCommand,
      runtime: "",
      runtimeBinDirs: [],
      env: {},
      heartbeatIntervalSeconds: this.config.heartbeatIntervalSeconds,
      heartbeatFile: join(this.config.heartbeatDir, `${pane.session}.hb`),
      restartPolicy: "never",
      maxRestarts: DEFAULT_MAX_RESTARTS,
    };
    const samePid = rec !== undefined && rec.paneId === pane.paneId && rec.panePid === pane.panePid;
    const a: Agent = rec ? { ...rec, spec, rt: newRuntime() } : newAgent(spec, pane);
    if (pane.dead) {
      // Known exit (already handled before the service restarted) stays as it was; an unseen one is handled by the first tick.
      if (!(samePid && rec.state === "exited")) Object.assign(a, { paneId: pane.paneId, panePid: pane.panePid, state: "running", pidStartTicks: -1 });
      return a;
    }
    const stat = await readProcStat(pane.panePid);
    const verified = samePid && isSameProcess(stat, rec.pidStartTicks);
    Object.assign(a, {
      paneId: pane.paneId,
      panePid: pane.panePid,
      pidStartTicks: verified ? rec.pidStartTicks : (stat?.startTicks ?? -1),
      state: "running",
      exitStatus: undefined,
      restartDueAt: undefined,
      startedAt: verified ? a.startedAt : new Date(),
      endedAt: undefined,
    });
    return a;
  }

  /** Service shutdown: supervision ends, agents keep running in tmux. */
  async close(): Promise<void> {
    this.supervisor.stop();
    await this.attention.close();
    this.events.close();
    await this.persist();
    this.store.close();
    await this.releaseSocket?.();
  }

  /**
   * A started agent the state file cannot record (a full disk) is not left
   * running unknown to it: its session is ended, the previous record put back,
   * and StartAgent answers with the fault (RESOURCE_EXHAUSTED for no space).
   */
  private async recordOrUndo(a: Agent, previous: Agent | undefined): Promise<void> {
    const failed = await this.persist();
    if (!failed) return;
    await this.tmux.killSession(a.spec.name).catch((err: unknown) => this.log.warn({ err, agent: a.spec.name }, "could not end an agent that was not recorded"));
    if (previous) this.agents.set(a.spec.name, previous);
    else this.agents.delete(a.spec.name);
    this.log.warn({ agent: a.spec.name, path: this.store.path, reason: failed.message }, "agent not started: the state file cannot record it");
    throw fileSystemFault(failed, "the fleet state", dirname(this.store.path)) ?? failed;
  }

  private persist(): Promise<Error | undefined> {
    return this.store.save(() =>
      [...this.agents.values()].map(({ rt: _rt, ...rec }) => rec),
    );
  }

  private view(a: Agent): AgentSnapshot {
    return snapshot(a, this.socket);
  }

  get(name: string): AgentSnapshot {
    return this.view(this.tracked(name));
  }

  private tracked(name: string): Agent {
    const a = this.agents.get(name);
    if (!a) throw new NotFoundError(`no agent named ${JSON.stringify(name)}`);
    return a;
  }

  list(): AgentSnapshot[] {
    return [...this.agents.values()].sort((x, y) => x.spec.name.localeCompare(y.spec.name)).map((a) => this.view(a));
  }

  async start(req: StartRequest): Promise<{ agent: AgentSnapshot; alreadyRunning: boolean }> {
    checkLaunchFits({ ...req, env: { ...req.env, ...this.attention.launchEnvShape(req.name) }, binDirs: [...this.binDirCandidates(req.runtimeBinDirs), this.attention.binDir] });
    return this.lock.run(req.name, async () => {
      const pane = await this.tmux.pane(req.name);
      if (pane && !pane.dead) {
        let a = this.agents.get(req.name);
        if (!a || a.paneId !== pane.paneId) {
          // A session made outside the service (or before the state file knew it): take it over as is.
          a = await this.adopt(pane, a);
          this.agents.set(req.name, a);
          this.supervisor.publish("adopted", a, `adopted ${a.state} agent from tmux socket ${this.socket}`);
          await this.persist();
          this.log.info({ agent: req.name, state: a.state, panePid: a.panePid }, "adopted agent");
        }
        return { agent: this.view(a), alreadyRunning: true };
      }
      const old = this.agents.get(req.name);
      if (!pane && old?.rt.paneLost && isSameProcess(readProcStatSync(old.panePid), old.pidStartTicks)) {
        throw new FailedPreconditionError(`agent ${req.name} still runs (pid ${old.panePid}) without its tmux session; StopAgent ends it, then start it again`);
      }
      // A dead pane kept by remain-on-exit is not "running": replace the session.
      if (pane) await this.tmux.killSession(req.name);
      if (old) this.supervisor.cancelRestart(old);
      // The same agent started again keeps its worktree; a new one (or a name reused after removal) gets a fresh one.
      const worktree = old?.spec.worktree ?? (req.worktree ? await this.worktrees.create(req.name, req.worktree) : undefined);
      const made = worktree !== undefined && worktree !== old?.spec.worktree;

      const a = newAgent({
        name: req.name,
        workdir: worktree?.path ?? req.workdir,
        command: req.command,
        runtime: req.runtime,
        runtimeBinDirs: [...req.runtimeBinDirs],
        env: { ...req.env },
        heartbeatIntervalSeconds: req.heartbeatIntervalSeconds ?? this.config.heartbeatIntervalSeconds,
        heartbeatFile: join(req.heartbeatDir ?? this.config.heartbeatDir, `${req.name}.hb`),
        restartPolicy: req.restartPolicy,
        maxRestarts: req.maxRestarts || DEFAULT_MAX_RESTARTS,
        notifyUrl: req.notifyUrl,
        worktree,
      });
      try {
        await this.launch(a, "new");
      } catch (err) {
        // Nothing half-made: a worktree made for this start goes with it.
        if (made) await this.worktrees.discard(worktree).catch((e: unknown) => this.log.warn({ err: e, agent: req.name }, "could not remove the worktree of a failed start"));
        if (err instanceof TmuxError && /duplicate session/.test(err.stderr)) {
          throw new FailedPreconditionError(`a tmux session named ${req.name} appeared on socket ${this.socket} while starting; retry`);
        }
        throw err;
      }
      this.agents.set(req.name, a);
      await this.recordOrUndo(a, old);
      this.supervisor.beat(a, "ok");
      this.supervisor.publish("started", a, `started in pane ${a.paneId} (pid ${a.panePid})`);
      this.log.info({ agent: req.name, pane: a.paneId, panePid: a.panePid }, "agent started");
      return { agent: this.view(a), alreadyRunning: false };
    });
  }

  /** Every dir that could be baked into the agent's PATH, existing or not (the size check's worst case). */
  private binDirCandidates(request: readonly string[]): string[] {
    return resolveBinDirs({ request, configured: this.config.runtimeBinDirs, home: this.config.home }, () => true);
  }

  /** Runs the agent's command in a new session, or again in its existing pane. */
  private async launch(a: Agent, how: "new" | "respawn"): Promise<void> {
    const binDirs = resolveBinDirs({ request: a.spec.runtimeBinDirs, configured: this.config.runtimeBinDirs, home: this.config.home }, isDirectory);
    // skein-fleet-signal on PATH (after the requested dirs: the old launcher's PATH prefix stays), the agent's name and secret in its environment.
    const shell = launchCommand({ binDirs: [...binDirs, this.attention.binDir], env: { ...a.spec.env, ...this.attention.launchEnv(a) }, command: a.spec.command });
    // What was kept of an earlier run must not pass for this one's output.
    await this.kept.remove(a.spec.name);
    const created = how === "respawn" ? await this.respawnOrCreate(a.spec, shell) : await this.tmux.newSession(a.spec.name, a.spec.workdir, shell);
    const stat = await readProcStat(created.panePid);
    Object.assign(a, {
      paneId: created.paneId,
      panePid: created.panePid,
      pidStartTicks: stat?.startTicks ?? -1,
      state: "running",
      exitStatus: undefined,
      startedAt: new Date(),
      endedAt: undefined,
    });
    a.rt.pidMismatchVisits = 0;
    a.rt.statusWaitVisits = 0;
    a.rt.nextCheckAt = 0;
    a.rt.seen = newObservation();
    Object.assign(a, { activity: "unknown", activitySince: new Date(), waitingFor: "" });
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

  /**
   * Ends the agent's processes, whether or not its pane still exists, and
   * reports STOPPED only once they are gone and the tmux server has reaped the
   * agent's own process.
   */
  async stop(name: string, graceSeconds: number): Promise<AgentSnapshot> {
    return this.lock.run(name, async () => {
      const a = this.agents.get(name);
      const pane = await this.tmux.pane(name);
      if (!a && !pane) throw new NotFoundError(`no agent named ${JSON.stringify(name)}`);
      // Stopping a stopped agent changes nothing: no second event, its heartbeat keeps its time.
      if (a?.state === "stopped" && !pane) return this.view(a);
      if (a) this.supervisor.cancelRestart(a);
      const targets = this.stopTargets(a, pane);
      const survivors = (await Promise.all(targets.map((t) => this.terminate(t, graceSeconds)))).filter((pid) => pid !== undefined);
      if (survivors.length > 0) {
        throw new FailedPreconditionError(`agent ${name}: process ${survivors.join(", ")} (or one it started) still runs ${AFTER_KILL_WAIT_MS / 1000}s after SIGKILL; not stopped, call StopAgent again`);
      }
      // Before the session goes: with its last session the tmux server exits, leaving the zombie to init.
      const unreaped = (await Promise.all(targets.map((t) => awaitReaped(t)))).filter((pid) => pid !== undefined);
      if (unreaped.length > 0) {
        throw new FailedPreconditionError(`agent ${name}: process ${unreaped.join(", ")} has ended but the tmux server has not reaped it after ${REAP_WAIT_MS / 1000}s; call StopAgent again`);
      }
      // The pane is dead now and still there (remain-on-exit): its screen is the agent's last words.
      if (pane) await this.kept.keep(name);
      await this.tmux.killSession(name);
      const stopped: Agent = a ?? (await this.adopt(pane!, undefined));
      this.supervisor.beat(stopped, "stopped");
      // An agent that had exited before keeps the time it ended.
      if (targets.length > 0 || stopped.state !== "exited" || !stopped.endedAt) stopped.endedAt = new Date();
      stopped.state = "stopped";
      stopped.rt.paneLost = false;
      stopped.rt.paneLostAt = undefined;
      this.agents.set(name, stopped);
      const how = pane && !pane.dead ? "stopped" : targets.length > 0 ? "stopped (its process ran on without its tmux session)" : "session removed (the process had already ended)";
      this.supervisor.publish("stopped", stopped, how);
      await this.persist();
      this.log.info({ agent: name, pids: targets.map((t) => t.pid) }, "agent stopped");
      return this.view(stopped);
    });
  }

  /**
   * The processes a stop must end, each a pid with the start time that proves
   * it is still the one launched: the live pane's, and the tracked agent's
   * when it runs on outside its pane. A pid that now belongs to another
   * process is never signalled.
   */
  private stopTargets(a: Agent | undefined, pane: PaneInfo | undefined): StopTarget[] {
    const targets: StopTarget[] = [];
    if (pane && !pane.dead) {
      const stat = readProcStatSync(pane.panePid);
      const expected = a?.panePid === pane.panePid && a.pidStartTicks !== -1 ? a.pidStartTicks : stat?.startTicks;
      if (stat && expected !== undefined && isSameProcess(stat, expected)) targets.push({ pid: pane.panePid, startTicks: expected });
      else if (stat) this.log.warn({ panePid: pane.panePid }, "pane pid belongs to another process now; not signalling it");
    }
    if (a && a.panePid > 0 && a.pidStartTicks !== -1 && !targets.some((t) => t.pid === a.panePid) && isSameProcess(readProcStatSync(a.panePid), a.pidStartTicks)) {
      targets.push({ pid: a.panePid, startTicks: a.pidStartTicks });
    }
    return targets;
  }

  /**
   * SIGTERM to the process's group and session, SIGKILL to whatever is left
   * after the grace period. Resolves with the pid when something outlived
   * even SIGKILL, else undefined.
   */
  private async terminate(t: StopTarget, graceSeconds: number): Promise<number | undefined> {
    const ended = await endProcesses({
      signal: (sig) => signalAgentProcesses(t.pid, sig),
      gone: async () => (await sessionMembers(t.pid)).length === 0,
      graceMs: graceSeconds * 1000,
      afterKillMs: AFTER_KILL_WAIT_MS,
      pollMs: STOP_POLL_MS,
    });
    return ended ? undefined : t.pid;
  }

  /**
   * Forgets a stopped or exited agent: its record, its dead session, its kept
   * screen and its heartbeat file (nothing would ever update that file again,
   * and monitors would list the agent forever). A pending restart is cancelled.
   * Its worktree goes too when clean (or `force`); a dirty one refuses first.
   */
  async remove(name: string, force = false): Promise<AgentSnapshot> {
    return this.lock.run(name, async () => {
      const a = this.tracked(name);
      if (a.state === "running" || a.state === "unknown") throw new FailedPreconditionError(`agent ${name} is ${a.state}; stop it first`);
      const pane = await this.tmux.pane(name);
      if (pane && !pane.dead) throw new FailedPreconditionError(`agent ${name} has a live tmux session on socket ${this.socket}; stop it first`);
      // First: a dirty worktree refuses the removal before anything is gone.
      if (a.spec.worktree) await this.worktrees.remove(name, a.spec.worktree, force);
      this.supervisor.cancelRestart(a);
      if (pane) await this.tmux.killSession(name);
      this.agents.delete(name);
      this.supervisor.forget(a);
      await this.persist();
      await this.kept.remove(name);
      await removeHeartbeat(a.spec.heartbeatFile, name).catch((err: unknown) => this.log.warn({ err, agent: name, file: a.spec.heartbeatFile }, "could not remove the heartbeat file"));
      this.supervisor.publish("removed", a, "removed");
      this.log.info({ agent: name }, "agent removed");
      return this.view(a);
    });
  }

  async sendInput(name: string, text: string, pressEnter: boolean): Promise<void> {
    await this.lock.run(name, async () => {
      const a = this.tracked(name);
      if (a.state !== "running") throw new FailedPreconditionError(`agent ${name} is ${a.state}; input goes only to a running agent`);
      try {
        if (text !== "") await this.tmux.sendLiteral(name, text);
        if (pressEnter) {
          if (text !== "") await sleep(ENTER_DELAY_MS);
          await this.tmux.sendEnter(name);
        }
      } catch (err) {
        throw this.paneGone(name, err);
      }
      this.attention.tracker.answered(a);
    });
  }

  /** The pane's last lines; once the pane is gone, what was kept of it when it ended. */
  async capture(name: string, lines: number): Promise<string> {
    const a = this.tracked(name);
    if (a.state !== "stopped") {
      try {
        return lastLines(await this.tmux.capture(name, lines), lines);
      } catch (err) {
        if (!(err instanceof TmuxError && err.isMissing)) throw err;
      }
    }
    const kept = await this.kept.read(name, lines);
    if (kept !== undefined) return kept;
    const why = this.config.keepLines === 0 ? "SKEIN_FLEET_KEEP_LINES is 0" : "its pane was gone before its screen could be read";
    throw new FailedPreconditionError(`agent ${name} is ${a.state} and has no tmux session on socket ${this.socket}; none of its output was kept (${why})`);
  }

  private paneGone(name: string, err: unknown): unknown {
    if (err instanceof TmuxError && err.isMissing) return new FailedPreconditionError(`agent ${name} has no tmux session on socket ${this.socket}`);
    return err;
  }
}

interface StopTarget {
  readonly pid: number;
  readonly startTicks: number;
}

/**
 * Waits until the ended process has left the process table. Its parent is the
 * tmux server, which can miss the SIGCHLD (tmux 3.3a) and then keeps it as a
 * zombie: each poll sends the server a SIGCHLD of our own. A zombie whose
 * parent is not a tmux server (the server died and init adopted it) is its new
 * parent's to reap. Resolves with the pid when it is still there at the end.
 */
async function awaitReaped(t: StopTarget): Promise<number | undefined> {
  const reaped = await waitUntil(
    () => {
      const s = readProcStatSync(t.pid);
      if (!s || s.startTicks !== t.startTicks) return true;
      if (s.state !== "Z") return false;
      if (!readProcStatSync(s.ppid)?.comm.startsWith("tmux")) return true;
      signalProcess(s.ppid, "SIGCHLD");
      return false;
    },
    REAP_WAIT_MS,
    STOP_POLL_MS,
  );
  return reaped ? undefined : t.pid;
}

/** Signals the pane's process group and every process of its session (all a pane started, unless it escaped with setsid). */
async function signalAgentProcesses(panePid: number, sig: NodeJS.Signals): Promise<void> {
  signalGroup(panePid, sig);
  for (const pid of await sessionMembers(panePid)) signalProcess(pid, sig);
}

/**
 * The state and heartbeat directories, made at start: one that cannot be made
 * is a bad setting (exit 2, one line), not a service whose every write fails.
 */
async function makeConfiguredDirectories(config: FleetConfig): Promise<void> {
  const dirs = [
    ["SKEIN_FLEET_STATE_DIR", config.stateDir, 0o700],
    // Readable by fleet monitors running as other users, like the heartbeat files.
    ["SKEIN_HEARTBEAT_DIR", config.heartbeatDir, 0o755],
  ] as const;
  for (const [variable, dir, mode] of dirs) {
    await makeDirectory(dir, mode).catch((err: unknown) => {
      throw new ConfigError(`${variable}=${JSON.stringify(dir)} cannot be created: ${(err as Error).message}`);
    });
  }
}

/**
 * One fleet service per tmux socket: two would both adopt every agent, write
 * every heartbeat and race on restarts. The lock lives beside the socket
 * (where tmux keeps it), so it holds whatever state directories they use.
 */
async function claimSocket(socket: string): Promise<() => Promise<void>> {
  // tmux requires this directory to be private; create it the way tmux would.
  await makeDirectory(tmuxSocketDir(), 0o700);
  try {
    return await acquireInstanceLock(
      fleetSocketLockPath(socket),
      (pid) => `another fleet service (pid ${pid}) already supervises tmux socket ${socket}; stop it, or give this one its own SKEIN_TMUX_SOCKET`,
    );
  } catch (err) {
    if (err instanceof InstanceLockedError) throw new ConfigError(err.message);
    throw err;
  }
}
