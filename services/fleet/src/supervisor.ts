import type { Broadcaster } from "@skein/runtime";
import type { Logger } from "pino";
import { snapshot, type Agent, type FleetEvent, type FleetEventType } from "./agent.js";
import { writeHeartbeat, type HeartbeatStatus } from "./heartbeat.js";
import { isSameProcess, readProcStat, type KeyedLock } from "@skein/host";
import { decideRestart } from "./restart-policy.js";
import type { Tmux } from "./tmux.js";

export interface SupervisorDeps {
  readonly tmux: Tmux;
  readonly log: Logger;
  readonly lock: KeyedLock;
  readonly events: Broadcaster<FleetEvent>;
  readonly agents: () => Iterable<Agent>;
  readonly persist: () => void;
  /** Keeps the last screen of the agent's pane (it has just ended) for CaptureOutput. */
  readonly keepScreen: (agent: Agent) => Promise<void>;
  /** Runs the agent's command again (same session when it still exists). */
  readonly relaunch: (agent: Agent) => Promise<void>;
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
 * One timer for the whole fleet: liveness checks, heartbeat files, exit
 * detection and the restart policy. No process per agent, no fork per beat:
 * a beat reads /proc and writes one file; tmux is asked only when the pid
 * fails the liveness test.
 */
export class Supervisor {
  private timer: NodeJS.Timeout | undefined;
  private readonly tickMs: number;

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
    for (const a of this.d.agents()) {
      clearTimeout(a.rt.restartTimer);
      a.rt.restartTimer = undefined;
    }
  }

  publish(type: FleetEventType, agent: Agent, message: string): void {
    this.d.events.publish({ type, agent: snapshot(agent, this.d.tmux.socket), at: new Date(), message });
  }

  async beat(a: Agent, status: HeartbeatStatus): Promise<void> {
    const at = new Date();
    try {
      await writeHeartbeat(a.spec.heartbeatFile, {
        at,
        pid: a.panePid,
        status,
        runtime: a.spec.runtime,
        agent: a.spec.name,
        exitCode: a.exitStatus,
        paneId: a.paneId,
        socket: this.d.tmux.socket,
        restarts: a.restarts,
      });
    } catch (err) {
      this.d.log.warn({ err, agent: a.spec.name, file: a.spec.heartbeatFile }, "heartbeat write failed");
      return;
    }
    a.lastHeartbeatAt = at;
    a.rt.staleReported = false;
    a.rt.nextBeatAt = at.getTime() + a.spec.heartbeatIntervalSeconds * 1000;
  }

  /**
   * Starts the visits that are due and does not wait for them: a visit waits
   * for its agent's lock, which a stop holds for its whole grace period, and
   * no other agent may wait for that. rt.visiting keeps one visit per agent.
   */
  private tick(): void {
    const now = Date.now();
    for (const a of this.d.agents()) {
      if (a.state !== "running" && a.state !== "unknown") continue;
      this.reportStale(a, now);
      if (a.rt.visiting || (now < a.rt.nextCheckAt && now < a.rt.nextBeatAt)) continue;
      a.rt.visiting = true;
      a.rt.nextCheckAt = now + CHECK_EVERY_MS;
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
    this.publish("heartbeat-stale", a, `no heartbeat written for ${Math.round(age / 1000)}s`);
  }

  private async visit(a: Agent): Promise<void> {
    if (a.state === "running") {
      if (isSameProcess(await readProcStat(a.panePid), a.pidStartTicks)) {
        a.rt.pidMismatchVisits = 0;
        if (Date.now() >= a.rt.nextBeatAt) await this.beat(a, "ok");
        return;
      }
    }
    if (a.state === "running" || a.state === "unknown") await this.confirmWithTmux(a);
    // Never leave status=ok behind for an agent the service cannot vouch for.
    if (a.state === "unknown" && Date.now() >= a.rt.nextBeatAt) await this.beat(a, "unknown");
  }

  /** The pid failed the liveness test (or could not be verified): ask tmux what happened to the pane. */
  private async confirmWithTmux(a: Agent): Promise<void> {
    const pane = await this.d.tmux.pane(a.spec.name);
    this.d.log.debug({ agent: a.spec.name, panePid: a.panePid, pane }, "pid failed the liveness test; asked tmux");
    if (!pane) return this.exited(a, undefined, "tmux session is gone");
    if (!pane.dead && (pane.paneId !== a.paneId || pane.panePid !== a.panePid)) {
      // Someone respawned the pane by hand: supervise what runs there now.
      const stat = await readProcStat(pane.panePid);
      Object.assign(a, { paneId: pane.paneId, panePid: pane.panePid, pidStartTicks: stat?.startTicks ?? -1, state: "running", startedAt: new Date(), endedAt: undefined });
      this.d.persist();
      return;
    }
    if (!pane.dead) {
      if (++a.rt.pidMismatchVisits >= UNKNOWN_AFTER_VISITS && a.state !== "unknown") {
        a.state = "unknown";
        this.d.log.warn({ agent: a.spec.name, panePid: a.panePid }, "pane alive but its pid is not the process started at launch");
        this.d.persist();
        await this.beat(a, "unknown");
        this.publish("heartbeat-stale", a, "pane alive but its pid is not the process started at launch; heartbeat says status=unknown");
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

  /** The agent's process ended: record it, write the exited heartbeat, apply the restart policy. */
  async exited(a: Agent, exitStatus: number | undefined, detail: string): Promise<void> {
    await this.d.keepScreen(a);
    a.exitStatus = exitStatus;
    a.endedAt = new Date();
    a.rt.pidMismatchVisits = 0;
    a.rt.statusWaitVisits = 0;
    // The file says exited before anyone can read the state as exited: a
    // monitor never sees the API and the heartbeat disagree.
    await this.beat(a, "exited");
    a.state = "exited";
    const decision = decideRestart({
      policy: a.spec.restartPolicy,
      exitStatus,
      ranMs: Date.now() - a.startedAt.getTime(),
      consecutiveRestarts: a.consecutiveRestarts,
      maxRestarts: a.spec.maxRestarts,
    });
    if (decision.action === "none") {
      this.publish("exited", a, detail);
    } else if (decision.action === "give-up") {
      a.consecutiveRestarts = decision.consecutiveRestarts;
      a.gaveUp = true;
      this.publish("exited", a, detail);
      this.publish("gave-up", a, `gave up after ${decision.consecutiveRestarts} restarts in a row (max_restarts ${a.spec.maxRestarts})`);
    } else {
      a.consecutiveRestarts = decision.consecutiveRestarts;
      a.restartDueAt = new Date(Date.now() + decision.delayMs);
      this.publish("exited", a, `${detail}; restarting in ${formatDelay(decision.delayMs)}`);
      this.scheduleRestart(a);
    }
    this.d.persist();
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
    try {
      await this.d.relaunch(a);
    } catch (err) {
      this.d.log.warn({ err, agent: a.spec.name }, "relaunch failed");
      a.startedAt = new Date();
      return this.exited(a, undefined, `restart failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.publish("restarted", a, `restart ${a.consecutiveRestarts} of at most ${a.spec.maxRestarts} in a row (${a.restarts} in total)`);
    await this.beat(a, "ok");
    this.d.persist();
  }
}

function formatDelay(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
