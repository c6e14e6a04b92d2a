import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  acquireInstanceLock,
  endProcesses,
  fleetSocketLockPath,
  InstanceLockedError,
  isSameProcess,
  KeyedLock,
  readProcStat,
  sessionMembers,
  signalGroup,
  signalProcess,
  tmuxSocketDir,
} from "@skein/host";
import { Broadcaster, ConfigError, FailedPreconditionError, NotFoundError, sleep } from "@skein/runtime";
import type { Logger } from "pino";
import { newAgent, newRuntime, snapshot, type Agent, type AgentRecord, type AgentSnapshot, type AgentSpec, type FleetEvent } from "./agent.js";
import type { FleetConfig } from "./config.js";
import { removeHeartbeat } from "./heartbeat.js";
import { KeptOutput } from "./kept-output.js";
import { launchCommand, resolveBinDirs } from "./launch-command.js";
import { DEFAULT_MAX_RESTARTS } from "./restart-policy.js";
import { lastLines } from "./screen-text.js";
import { StateStore } from "./state-store.js";
import { Supervisor } from "./supervisor.js";
import { Tmux, TmuxError, type PaneInfo } from "./tmux.js";
import { AGENT_NAME, isDirectory } from "./validate.js";

/** An agent spec as requested: interval, heartbeat dir and max restarts may be left to the defaults. */
export type StartRequest = Omit<AgentSpec, "heartbeatIntervalSeconds" | "heartbeatFile" | "maxRestarts"> & {
  readonly heartbeatIntervalSeconds?: number | undefined;
  readonly heartbeatDir?: string | undefined;
  readonly maxRestarts?: number | undefined;
};

/** Pause between typed text and Enter: agent TUIs take a fast Enter as part of a paste. */
const ENTER_DELAY_MS = 150;
const STOP_POLL_MS = 100;
/** After SIGKILL the kernel needs a moment; tmux then reaps the pane's process. */
const AFTER_KILL_WAIT_MS = 3_000;

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

  constructor(
    private readonly config: FleetConfig,
    private readonly log: Logger,
  ) {
    this.tmux = new Tmux(config.socket, config.keepLines);
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
  }

  get socket(): string {
    return this.config.socket;
  }

  /** Adopts every session already on the socket, then starts supervising. */
  async open(): Promise<void> {
    this.releaseSocket = await claimSocket(this.socket);
    const saved = await this.store.load();
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
      if (rec.state === "running" || rec.state === "unknown") {
        // It ended while no service watched it; its heartbeat must stop claiming "ok".
        a.state = "exited";
        a.exitStatus = undefined;
        a.restartDueAt = undefined;
        a.endedAt = new Date();
        await this.supervisor.beat(a, "exited");
      }
    }
    // A service that has never run an agent leaves no state file behind.
    if (this.agents.size > 0) await this.persist();
    this.supervisor.start();
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
    this.events.close();
    await this.persist();
    await this.releaseSocket?.();
  }

  private persist(): Promise<void> {
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
      // A dead pane kept by remain-on-exit is not "running": replace the session.
      if (pane) await this.tmux.killSession(req.name);
      const old = this.agents.get(req.name);
      if (old) this.supervisor.cancelRestart(old);

      const a = newAgent({
        name: req.name,
        workdir: req.workdir,
        command: req.command,
        runtime: req.runtime,
        runtimeBinDirs: [...req.runtimeBinDirs],
        env: { ...req.env },
        heartbeatIntervalSeconds: req.heartbeatIntervalSeconds ?? this.config.heartbeatIntervalSeconds,
        heartbeatFile: join(req.heartbeatDir ?? this.config.heartbeatDir, `${req.name}.hb`),
        restartPolicy: req.restartPolicy,
        maxRestarts: req.maxRestarts || DEFAULT_MAX_RESTARTS,
      });
      try {
        await this.launch(a, "new");
      } catch (err) {
        if (err instanceof TmuxError && /duplicate session/.test(err.stderr)) {
          throw new FailedPreconditionError(`a tmux session named ${req.name} appeared on socket ${this.socket} while starting; retry`);
        }
        throw err;
      }
      this.agents.set(req.name, a);
      await this.supervisor.beat(a, "ok");
      this.supervisor.publish("started", a, `started in pane ${a.paneId} (pid ${a.panePid})`);
      await this.persist();
      this.log.info({ agent: req.name, pane: a.paneId, panePid: a.panePid }, "agent started");
      return { agent: this.view(a), alreadyRunning: false };
    });
  }

  /** Runs the agent's command in a new session, or again in its existing pane. */
  private async launch(a: Agent, how: "new" | "respawn"): Promise<void> {
    const binDirs = resolveBinDirs({ request: a.spec.runtimeBinDirs, configured: this.config.runtimeBinDirs, home: this.config.home }, isDirectory);
    const shell = launchCommand({ binDirs, env: a.spec.env, command: a.spec.command });
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

  async stop(name: string, graceSeconds: number): Promise<AgentSnapshot> {
    return this.lock.run(name, async () => {
      const a = this.agents.get(name);
      const pane = await this.tmux.pane(name);
      if (!a && !pane) throw new NotFoundError(`no agent named ${JSON.stringify(name)}`);
      // Stopping a stopped agent changes nothing: no second event, its heartbeat keeps its time.
      if (a?.state === "stopped" && !pane) return this.view(a);
      if (a) this.supervisor.cancelRestart(a);
      const wasAlive = pane !== undefined && !pane.dead;
      if (wasAlive) await this.terminate(pane.panePid, a?.panePid === pane.panePid ? a.pidStartTicks : undefined, graceSeconds);
      // The pane is dead now and still there (remain-on-exit): its screen is the agent's last words.
      if (pane) await this.kept.keep(name);
      await this.tmux.killSession(name);
      const stopped: Agent =
        a ?? (await this.adopt(pane!, undefined));
      await this.supervisor.beat(stopped, "stopped");
      // An agent that had exited before keeps the time it ended.
      if (wasAlive || stopped.state !== "exited" || !stopped.endedAt) stopped.endedAt = new Date();
      stopped.state = "stopped";
      this.agents.set(name, stopped);
      this.supervisor.publish("stopped", stopped, pane && !pane.dead ? "stopped" : "session removed (the process had already ended)");
      await this.persist();
      this.log.info({ agent: name }, "agent stopped");
      return this.view(stopped);
    });
  }

  /**
   * SIGTERM to the pane's process group and session, SIGKILL to whatever is
   * left after the grace period. A pid that now belongs to another process
   * (start time changed) is not signalled.
   */
  private async terminate(pid: number, expectedStartTicks: number | undefined, graceSeconds: number): Promise<void> {
    const stat = await readProcStat(pid);
    if (stat && expectedStartTicks !== undefined && expectedStartTicks !== -1 && !isSameProcess(stat, expectedStartTicks)) {
      this.log.warn({ panePid: pid }, "pane pid belongs to another process now; not signalling it");
      return;
    }
    await endProcesses({
      signal: (sig) => signalAgentProcesses(pid, sig),
      gone: async () => (await sessionMembers(pid)).length === 0,
      graceMs: graceSeconds * 1000,
      afterKillMs: AFTER_KILL_WAIT_MS,
      pollMs: STOP_POLL_MS,
    });
  }

  /**
   * Forgets a stopped or exited agent: its record, its dead session, its kept
   * screen and its heartbeat file (nothing would ever update that file again,
   * and monitors would list the agent forever). A pending restart is cancelled.
   */
  async remove(name: string): Promise<AgentSnapshot> {
    return this.lock.run(name, async () => {
      const a = this.tracked(name);
      if (a.state === "running" || a.state === "unknown") throw new FailedPreconditionError(`agent ${name} is ${a.state}; stop it first`);
      const pane = await this.tmux.pane(name);
      if (pane && !pane.dead) throw new FailedPreconditionError(`agent ${name} has a live tmux session on socket ${this.socket}; stop it first`);
      this.supervisor.cancelRestart(a);
      if (pane) await this.tmux.killSession(name);
      this.agents.delete(name);
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

/** Signals the pane's process group and every process of its session (all a pane started, unless it escaped with setsid). */
async function signalAgentProcesses(panePid: number, sig: NodeJS.Signals): Promise<void> {
  signalGroup(panePid, sig);
  for (const pid of await sessionMembers(panePid)) signalProcess(pid, sig);
}

/**
 * One fleet service per tmux socket: two would both adopt every agent, write
 * every heartbeat and race on restarts. The lock lives beside the socket
 * (where tmux keeps it), so it holds whatever state directories they use.
 */
async function claimSocket(socket: string): Promise<() => Promise<void>> {
  // tmux requires this directory to be private; create it the way tmux would.
  await mkdir(tmuxSocketDir(), { recursive: true, mode: 0o700 });
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
