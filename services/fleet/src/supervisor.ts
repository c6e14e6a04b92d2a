import type { Logger } from "pino";
import type { Agent } from "./agent.js";
import type { AgentRegistry, PaneRun } from "./agent-registry.js";
import { isSameProcess, readProcStatSync, type KeyedLock, type ProcStat } from "@skein/host";
import { decideRestart } from "./restart-policy.js";
import type { Tmux } from "./tmux.js";

export interface SupervisorDeps {
  readonly tmux: Pick<Tmux, "pane" | "nudgeReaper">;
  readonly log: Logger;
  readonly lock: KeyedLock;
  /** The agents to watch; every state change goes through it. */
  readonly registry: AgentRegistry;
  /** Keeps the last screen of the agent's pane (it has just ended) for CaptureOutput. */
  readonly kept: { keep(name: string): Promise<void> };
  /** Runs the agent's command again (same session when it still exists). */
  readonly launcher: { launch(a: Agent, how: "respawn"): Promise<PaneRun> };
  /** How often the one timer looks at every agent. */
  readonly tickMs?: number;
}

/**
 * Liveness of an agent is looked at this often, independent of its heartbeat
 * interval; an agent whose beat is due (none written since the pid failed) or
 * whose exit status is awaited is visited at every tick.
 */
const CHECK_EVERY_MS = 1_000;
/** Visits (one a tick, tickMs apart) to wait for tmux to reap a dead pane and report its status; a loaded host needs seconds. */
const STATUS_WAIT_VISITS = 20;
/** Visits at which a pid may fail the liveness test while tmux still calls the pane alive, before the agent is "unknown". */
const UNKNOWN_AFTER_VISITS = 20;
/**
 * How long a process may outlive its tmux session before it is reported as
 * running without one: the hangup that closing a pane sends takes a moment to
 * end a process that does not ignore it.
 */
const PANE_LOST_GRACE_MS = 1_000;

/**
 * One timer for the whole fleet: liveness checks, heartbeat files, exit
 * detection and the restart policy. No process per agent, no fork per beat:
 * a healthy agent costs one /proc read and, when its beat is due, one small
 * file write, done in place by the timer; tmux is asked only when /proc says
 * something changed (the process ended, or lost its terminal because its pane
 * or the whole tmux server went away).
 */
export class Supervisor {
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;
  /** Ticks done so far: a test waits on it to know a moment has passed without something happening. */
  ticks = 0;

  constructor(private readonly d: SupervisorDeps) {
    this.tickMs = d.tickMs ?? 250;
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
  }

  /** Stops the timer and pending restarts; agents keep running. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const a of this.d.registry.all()) {
      clearTimeout(a.rt.restartTimer);
      a.rt.restartTimer = undefined;
    }
  }

  /**
   * Does the due visits of healthy agents in place (see healthy()), and starts
   * the others without waiting for them: such a visit waits for its agent's
   * lock, which a stop holds for its whole grace period, and no other agent
   * may wait for that. rt.visiting keeps one visit per agent.
   */
  private tick(): void {
    const now = Date.now();
    this.ticks++;
    for (const a of this.d.registry.all()) {
      if (a.rt.finalBeat && a.state !== "running" && a.state !== "unknown" && now >= a.rt.nextCheckAt) {
        a.rt.nextCheckAt = now + CHECK_EVERY_MS;
        this.d.registry.beat(a, a.rt.finalBeat, now);
      }
      if (a.state !== "running" && a.state !== "unknown") continue;
      this.reportStale(a, now);
      if (a.rt.visiting || (now < a.rt.nextCheckAt && now < a.rt.nextBeatAt)) continue;
      a.rt.nextCheckAt = now + CHECK_EVERY_MS;
      // Synchronous, so nothing else can act on the agent meanwhile; but a
      // start, stop or restart in progress holds the lock and must finish first.
      if (a.state === "running" && this.d.lock.isIdle(a.spec.name) && this.healthy(a, readProcStatSync(a.panePid))) {
        if (now >= a.rt.nextBeatAt) this.d.registry.beat(a, "ok", now);
        continue;
      }
      a.rt.visiting = true;
      void this.d.lock
        .run(a.spec.name, () => this.visit(a))
        .catch((err: unknown) => this.d.log.error({ err, agent: a.spec.name }, "supervision failed"))
        .finally(() => (a.rt.visiting = false));
    }
  }

  /** Heartbeats the service could not write for two intervals: the file lies by its age. */
  private reportStale(a: Agent, now: number): void {
    if (a.state !== "running" || a.rt.staleReported || !a.lastHeartbeatAt) return;
    const age = now - a.lastHeartbeatAt.getTime();
    if (age <= 2 * a.spec.heartbeatIntervalSeconds * 1000 + CHECK_EVERY_MS) return;
    a.rt.staleReported = true;
    this.d.registry.publish("heartbeat-stale", a, `no heartbeat written for ${Math.round(age / 1000)}s`);
  }

  /**
   * The launched process still holds its pid and still has its terminal. A
   * pane that closes (session killed, tmux server gone) hangs its terminal up,
   * which takes the terminal from every process of the pane: /proc shows it at
   * once, so tmux need not be asked while neither has happened.
   */
  private healthy(a: Agent, stat: ProcStat | undefined): boolean {
    if (!isSameProcess(stat, a.pidStartTicks) || stat.ttyNr === 0) return false;
    a.rt.pidMismatchVisits = 0;
    a.rt.paneLostAt = undefined;
    return true;
  }

  private async visit(a: Agent): Promise<void> {
    // Stopped, exited or restarted while this visit waited for the lock: its own visits follow.
    // Or no longer tracked: a start undone (the state file could not record it) leaves a running record behind.
    if ((a.state !== "running" && a.state !== "unknown") || this.d.registry.get(a.spec.name) !== a) return;
    const stat = readProcStatSync(a.panePid);
    if (a.state === "running" && this.healthy(a, stat)) {
      if (Date.now() >= a.rt.nextBeatAt) this.d.registry.beat(a, "ok");
      return;
    }
    const alive = isSameProcess(stat, a.pidStartTicks);
    if (a.state === "unknown" && a.rt.paneLost) {
      // Running without a pane: only its end can change that.
      if (!alive) return this.exited(a, undefined, "the process that had lost its tmux session ended");
    } else {
      await this.confirmWithTmux(a, alive);
    }
    // Never leave status=ok behind for an agent the service cannot vouch for.
    if (a.state === "unknown" && Date.now() >= a.rt.nextBeatAt) this.d.registry.beat(a, "unknown");
  }

  /** /proc says the process ended or lost its terminal (or cannot be verified): ask tmux what happened to the pane. */
  private async confirmWithTmux(a: Agent, alive: boolean): Promise<void> {
    const pane = await this.d.tmux.pane(a.spec.name);
    this.d.log.debug({ agent: a.spec.name, panePid: a.panePid, pane, alive }, "process changed in /proc; asked tmux");
    if (!pane) return alive ? this.paneLost(a) : this.exited(a, undefined, "tmux session is gone");
    if (!pane.dead && alive && pane.paneId === a.paneId && pane.panePid === a.panePid) {
      // Its own pane, its own process: it merely has no terminal (it dropped it).
      a.rt.pidMismatchVisits = 0;
      a.rt.paneLostAt = undefined;
      if (a.state === "running" && Date.now() >= a.rt.nextBeatAt) this.d.registry.beat(a, "ok");
      return;
    }
    if (!pane.dead && (pane.paneId !== a.paneId || pane.panePid !== a.panePid)) {
      // Someone respawned the pane by hand: supervise what runs there now.
      const run = { paneId: pane.paneId, panePid: pane.panePid, pidStartTicks: readProcStatSync(pane.panePid)?.startTicks ?? -1 };
      void this.d.registry.change(a, { state: "running", run, startedAt: new Date() }, { record: "after" });
      return;
    }
    if (!pane.dead) {
      if (++a.rt.pidMismatchVisits >= UNKNOWN_AFTER_VISITS && a.state !== "unknown") {
        this.d.log.warn({ agent: a.spec.name, panePid: a.panePid }, "pane alive but its pid is not the process started at launch");
        const message = "pane alive but its pid is not the process started at launch; heartbeat says status=unknown";
        void this.d.registry.change(a, { state: "unknown", paneLost: false }, { beat: "unknown", event: { type: "heartbeat-stale", message }, record: "after" });
      }
      return;
    }
    if (pane.deadStatus === undefined && pane.deadSignal === undefined && ++a.rt.statusWaitVisits < STATUS_WAIT_VISITS) {
      // tmux 3.3 can miss the SIGCHLD when several panes exit at once and
      // leave them as zombies with no status; a SIGCHLD of our own makes it
      // reap them and record the status.
      this.d.tmux.nudgeReaper(pane.serverPid);
      a.rt.nextCheckAt = 0; // look again at the next tick, not a second later
      return;
    }
    if (pane.deadSignal !== undefined) return this.exited(a, 128 + pane.deadSignal, `killed by signal ${pane.deadSignal}`);
    return this.exited(a, pane.deadStatus, pane.deadStatus === undefined ? "exited (status unknown)" : `exited with status ${pane.deadStatus}`);
  }

  /**
   * The agent's session is gone (killed by hand, or the tmux server died) but
   * its process, which ignored the hangup, runs on: no pane to type into or
   * read, no exit status to wait for. It is "unknown" until it ends or
   * StopAgent ends it; it is not restarted meanwhile (that would run two).
   */
  private paneLost(a: Agent): void {
    const now = Date.now();
    a.rt.paneLostAt ??= now;
    if (now - a.rt.paneLostAt < PANE_LOST_GRACE_MS) {
      a.rt.nextCheckAt = 0; // look again at the next tick
      return;
    }
    this.d.log.warn({ agent: a.spec.name, panePid: a.panePid }, "tmux session gone but the agent's process runs on");
    const message = `tmux session is gone but process ${a.panePid} runs on without it; heartbeat says status=unknown; StopAgent ends it`;
    void this.d.registry.change(a, { state: "unknown", paneLost: true }, { beat: "unknown", event: { type: "heartbeat-stale", message }, record: "after" });
  }

  /** The agent's process ended: record it, write the exited heartbeat, apply the restart policy. */
  async exited(a: Agent, exitStatus: number | undefined, detail: string): Promise<void> {
    await this.d.kept.keep(a.spec.name);
    const endedAt = new Date();
    const decision = decideRestart({
      policy: a.spec.restartPolicy,
      exitStatus,
      ranMs: endedAt.getTime() - a.startedAt.getTime(),
      consecutiveRestarts: a.consecutiveRestarts,
      maxRestarts: a.spec.maxRestarts,
    });
    let message = detail;
    if (decision.action === "give-up") {
      a.consecutiveRestarts = decision.consecutiveRestarts;
      a.gaveUp = true;
    } else if (decision.action === "restart") {
      a.consecutiveRestarts = decision.consecutiveRestarts;
      a.restartDueAt = new Date(endedAt.getTime() + decision.delayMs);
      message = `${detail}; restarting in ${formatDelay(decision.delayMs)}`;
    }
    await this.d.registry.change(a, { state: "exited", exitStatus, endedAt }, { beat: "exited", event: { type: "exited", message }, record: "after" });
    if (decision.action === "give-up") {
      this.d.registry.publish("gave-up", a, `gave up after ${decision.consecutiveRestarts} restarts in a row (max_restarts ${a.spec.maxRestarts})`);
    }
    if (decision.action === "restart") this.scheduleRestart(a);
  }

  /** Arms the timer for a.restartDueAt (also used after adoption, when the service restarted mid-backoff). */
  scheduleRestart(a: Agent): void {
    if (!a.restartDueAt) return;
    clearTimeout(a.rt.restartTimer);
    const delay = Math.max(0, a.restartDueAt.getTime() - Date.now());
    const timer = setTimeout(() => {
      void this.d.lock
        .run(a.spec.name, () => this.restart(a, timer))
        .catch((err: unknown) => this.d.log.error({ err, agent: a.spec.name }, "restart failed"));
    }, delay);
    a.rt.restartTimer = timer;
  }

  cancelRestart(a: Agent): void {
    clearTimeout(a.rt.restartTimer);
    a.rt.restartTimer = undefined;
    a.restartDueAt = undefined;
  }

  private async restart(a: Agent, timer: NodeJS.Timeout): Promise<void> {
    // Stopped, started anew or restarted otherwise while this timer waited: nothing to do.
    if (a.rt.restartTimer !== timer || a.state !== "exited") return;
    a.rt.restartTimer = undefined;
    a.restartDueAt = undefined;
    a.consecutiveRestarts++;
    a.restarts++;
    let run: PaneRun;
    try {
      run = await this.d.launcher.launch(a, "respawn");
    } catch (err) {
      this.d.log.warn({ err, agent: a.spec.name }, "relaunch failed");
      a.startedAt = new Date();
      return this.exited(a, undefined, `restart failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const message = `restart ${a.consecutiveRestarts} of at most ${a.spec.maxRestarts} in a row (${a.restarts} in total)`;
    await this.d.registry.change(a, { state: "running", run, startedAt: new Date(), launched: true }, { beat: "ok", event: { type: "restarted", message }, record: "after" });
  }
}

function formatDelay(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
