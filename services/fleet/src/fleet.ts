import { join } from "node:path";
import { acquireInstanceLock, fleetSocketLockPath, InstanceLockedError, KeyedLock, makeDirectory, tmuxSocketDir } from "@skein/host";
import { ConfigError, FailedPreconditionError, NotFoundError, sleep } from "@skein/runtime";
import type { Logger } from "pino";
import type { Agent, AgentSnapshot } from "./agent.js";
import { AgentRegistry } from "./agent-registry.js";
import { adoptAll, adoptPane } from "./adoption.js";
import { Attention } from "./attention.js";
import type { FleetConfig } from "./config.js";
import { removeHeartbeat } from "./heartbeat.js";
import { KeptOutput } from "./kept-output.js";
import { lastLines } from "./screen-text.js";
import { Launcher, startAgent, type StartDeps, type StartRequest } from "./starting.js";
import { StateStore } from "./state-store.js";
import { endAgentProcesses, stopTargets } from "./stopping.js";
import { Supervisor } from "./supervisor.js";
import { Tmux, TmuxError } from "./tmux.js";
import { Worktrees } from "./worktrees.js";

export type { StartRequest } from "./starting.js";

/** Pause between typed text and Enter: agent TUIs take a fast Enter as part of a paste. */
const ENTER_DELAY_MS = 150;

/**
 * The fleet: agents in tmux sessions on one socket, their heartbeats and
 * supervision. Operations on one agent are serialised (one lock per name);
 * tmux is the source of truth for what runs, the state file for what tmux
 * does not know. The parts: AgentRegistry (the records, and the one place
 * their state changes), adoption.ts (after a restart), starting.ts,
 * stopping.ts, Supervisor (liveness, heartbeats, restarts) and Attention
 * (activity, signals, webhooks).
 */
export class Fleet {
  private releaseSocket: (() => Promise<void>) | undefined;
  private readonly tmux: Tmux;
  private readonly lock = new KeyedLock();
  private readonly store: StateStore;
  private readonly registry: AgentRegistry;
  private readonly kept: KeptOutput;
  /** Exposed for in-process tests, which wait on its ticks. */
  readonly supervisor: Supervisor;
  private readonly attention: Attention;
  private readonly worktrees: Worktrees;
  private readonly starting: StartDeps;

  constructor(
    private readonly config: FleetConfig,
    private readonly log: Logger,
  ) {
    this.tmux = new Tmux(config.socket, config.tmuxEnv, config.keepLines);
    this.store = new StateStore(config.stateDir, config.socket, log);
    this.registry = new AgentRegistry(config.socket, this.store, log);
    this.kept = new KeptOutput(config.stateDir, this.tmux, config.keepLines, log);
    const registry = this.registry;
    this.attention = new Attention({
      config,
      log,
      tmux: this.tmux,
      events: registry.events,
      agents: () => registry.all(),
      find: (name) => registry.get(name),
      changed: (a, message) => registry.activityChanged(a, message),
    });
    const launcher = new Launcher(config, this.tmux, this.kept, this.attention);
    this.supervisor = new Supervisor({ tmux: this.tmux, log, lock: this.lock, registry, kept: this.kept, launcher });
    this.worktrees = new Worktrees(config.worktreesDir, join(config.stateDir, `fleet-${config.socket}-setup`));
    const { tmux, supervisor, worktrees } = this;
    this.starting = { config, log, tmux, registry, supervisor, worktrees, launcher, statePath: this.store.path };
  }

  get socket(): string {
    return this.config.socket;
  }

  /** Every event about an agent, for WatchAgents and the webhook notifier. */
  get events(): AgentRegistry["events"] {
    return this.registry.events;
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
      await adoptAll({ config: this.config, log: this.log, tmux: this.tmux, store: this.store, registry: this.registry, supervisor: this.supervisor });
      this.supervisor.start();
      await this.attention.open();
    } catch (err) {
      this.supervisor.stop();
      await this.attention.close();
      await release();
      throw err;
    }
    this.releaseSocket = release;
  }

  /** Service shutdown: supervision ends, agents keep running in tmux. */
  async close(): Promise<void> {
    this.supervisor.stop();
    await this.attention.close();
    this.registry.events.close();
    await this.registry.persist();
    this.store.close();
    await this.releaseSocket?.();
  }

  get(name: string): AgentSnapshot {
    return this.registry.view(this.tracked(name));
  }

  private tracked(name: string): Agent {
    const a = this.registry.get(name);
    if (!a) throw new NotFoundError(`no agent named ${JSON.stringify(name)}`);
    return a;
  }

  list(): AgentSnapshot[] {
    return [...this.registry.all()].sort((x, y) => x.spec.name.localeCompare(y.spec.name)).map((a) => this.registry.view(a));
  }

  /** StartAgent: idempotent by name (see startAgent). */
  async start(req: StartRequest): Promise<{ agent: AgentSnapshot; alreadyRunning: boolean }> {
    this.starting.launcher.checkFits(req);
    return this.lock.run(req.name, () => startAgent(this.starting, req));
  }

  /**
   * Ends the agent's processes, whether or not its pane still exists, and
   * reports STOPPED only once they are gone and the tmux server has reaped the
   * agent's own process.
   */
  async stop(name: string, graceSeconds: number): Promise<AgentSnapshot> {
    return this.lock.run(name, async () => {
      const a = this.registry.get(name);
      const pane = await this.tmux.pane(name);
      if (!a && !pane) throw new NotFoundError(`no agent named ${JSON.stringify(name)}`);
      // Stopping a stopped agent changes nothing: no second event, its heartbeat keeps its time.
      if (a?.state === "stopped" && !pane) return this.registry.view(a);
      if (a) this.supervisor.cancelRestart(a);
      const targets = stopTargets(a, pane, this.log);
      await endAgentProcesses(name, targets, graceSeconds);
      // The pane is dead now and still there (remain-on-exit): its screen is the agent's last words.
      if (pane) await this.kept.keep(name);
      await this.tmux.killSession(name);
      const stopped: Agent = a ?? (await adoptPane({ config: this.config, registry: this.registry }, pane!, undefined));
      // An agent that had exited before keeps the time it ended.
      const keepsEnd = targets.length === 0 && stopped.state === "exited" && stopped.endedAt;
      const how = pane && !pane.dead ? "stopped" : targets.length > 0 ? "stopped (its process ran on without its tmux session)" : "session removed (the process had already ended)";
      await this.registry.change(stopped, { state: "stopped", endedAt: keepsEnd ? stopped.endedAt! : new Date() }, { beat: "stopped", event: { type: "stopped", message: how } });
      await this.registry.persist();
      this.log.info({ agent: name, pids: targets.map((t) => t.pid) }, "agent stopped");
      return this.registry.view(stopped);
    });
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
      this.registry.delete(name);
      await this.registry.persist();
      await this.kept.remove(name);
      await removeHeartbeat(a.spec.heartbeatFile, name).catch((err: unknown) => this.log.warn({ err, agent: name, file: a.spec.heartbeatFile }, "could not remove the heartbeat file"));
      this.registry.publish("removed", a, "removed");
      this.log.info({ agent: name }, "agent removed");
      return this.registry.view(a);
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
