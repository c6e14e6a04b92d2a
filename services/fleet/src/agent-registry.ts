import { Broadcaster, RepeatedFaults } from "@skein/runtime";
import type { Logger } from "pino";
import { newObservation, snapshot, type Agent, type AgentSnapshot, type FleetEvent, type FleetEventType } from "./agent.js";
import { writeHeartbeat, type HeartbeatStatus } from "./heartbeat.js";
import type { StateStore } from "./state-store.js";

/** The process a run of the agent's command got: tmux's pane and pid, and the pid's /proc start time (-1: not read). */
export interface PaneRun {
  readonly paneId: string;
  readonly panePid: number;
  readonly pidStartTicks: number;
}

/**
 * Every state an agent can be put in, with what goes with it. Nothing else
 * assigns `state`: each rule (a running agent has no end time, an agent
 * without its pane is unknown until it ends) lives here once.
 */
export type StateChange =
  /** A run began (launch, restart) or was found (adoption, a pane respawned by hand). */
  | {
      readonly state: "running";
      readonly run: PaneRun;
      /** When this run started; absent keeps the recorded start (an adopted run the pid check vouches for). */
      readonly startedAt?: Date | undefined;
      /** A run launched by the fleet: supervision counters and activity start afresh. */
      readonly launched?: boolean;
    }
  /** The service cannot vouch for the process: its pid is not the one launched, or it runs on without its pane. */
  | { readonly state: "unknown"; readonly paneLost: boolean }
  | { readonly state: "exited"; readonly exitStatus: number | undefined; readonly endedAt: Date }
  | { readonly state: "stopped"; readonly endedAt: Date };

/** What follows a change: the heartbeat file, the event watchers see, the state file. */
export interface Consequences {
  readonly beat?: HeartbeatStatus | undefined;
  readonly event?: { readonly type: FleetEventType; readonly message: string } | undefined;
  /**
   * "after": the state file is written in the background. "first": the state
   * file must hold the change before the beat and the event go out; a failed
   * write is returned and neither goes out (a start then undoes itself).
   */
  readonly record?: "after" | "first" | undefined;
}

/**
 * The agents the fleet tracks, and the one place their state changes: with
 * each change go its heartbeat, its event and the state file. Also writes
 * every heartbeat (a failed write is retried by the supervisor's ticks).
 */
export class AgentRegistry {
  readonly events = new Broadcaster<FleetEvent>();
  private readonly agents = new Map<string, Agent>();
  /** A failed beat is retried at every tick: logged once, then summed up at most once a minute (a full disk, many agents). */
  private readonly beatFaults: RepeatedFaults;

  constructor(
    readonly socket: string,
    private readonly store: Pick<StateStore, "save">,
    log: Logger,
  ) {
    this.beatFaults = new RepeatedFaults(log, "heartbeat writes", "agents");
  }

  get(name: string): Agent | undefined {
    return this.agents.get(name);
  }

  all(): IterableIterator<Agent> {
    return this.agents.values();
  }

  get size(): number {
    return this.agents.size;
  }

  /** Tracks the record under its name (a start, an adoption, or a start undone putting the previous one back). */
  set(a: Agent): void {
    this.agents.set(a.spec.name, a);
  }

  /** Forgets the agent (removed, or a start undone): its failing beats no longer count. */
  delete(name: string): void {
    this.agents.delete(name);
    this.beatFaults.forget(name);
  }

  /**
   * The only place an agent's state changes. The heartbeat file is written in
   * the same synchronous step as the state, so a monitor never sees the API
   * and the file disagree (except with record "first", where the record's
   * write comes first: the beat must not claim an agent that is then undone).
   */
  async change(a: Agent, next: StateChange, then: Consequences = {}): Promise<Error | undefined> {
    switch (next.state) {
      case "running":
        Object.assign(a, { ...next.run, exitStatus: undefined, restartDueAt: undefined, endedAt: undefined });
        if (next.startedAt) a.startedAt = next.startedAt;
        a.rt.pidMismatchVisits = 0;
        a.rt.paneLost = false;
        a.rt.paneLostAt = undefined;
        if (next.launched) {
          a.rt.statusWaitVisits = 0;
          a.rt.nextCheckAt = 0;
          a.rt.seen = newObservation();
          Object.assign(a, { activity: "unknown", activitySince: new Date(), waitingFor: "" });
        }
        break;
      case "unknown":
        if (next.paneLost) {
          a.rt.paneLost = true;
          a.rt.paneLostAt ??= 0;
        }
        break;
      case "exited":
        Object.assign(a, { exitStatus: next.exitStatus, endedAt: next.endedAt });
        a.rt.pidMismatchVisits = 0;
        a.rt.statusWaitVisits = 0;
        a.rt.paneLost = false;
        a.rt.paneLostAt = undefined;
        break;
      case "stopped":
        a.endedAt = next.endedAt;
        a.rt.paneLost = false;
        a.rt.paneLostAt = undefined;
        break;
    }
    a.state = next.state;
    if (then.record === "first") {
      const failed = await this.persist();
      if (failed) return failed;
    }
    if (then.beat) this.beat(a, then.beat);
    if (then.event) this.publish(then.event.type, a, then.event.message);
    if (then.record === "after") void this.persist();
    return undefined;
  }

  /** An agent's activity changed (the tracker set it): tell watchers, let the heartbeat say it, record it. */
  activityChanged(a: Agent, message: string): void {
    this.publish("activity", a, message);
    if (a.state === "running") this.beat(a, "ok");
    void this.persist();
  }

  /** Writes the state file with every tracked agent; resolves with the fault when it could not. */
  persist(): Promise<Error | undefined> {
    return this.store.save(() => [...this.agents.values()].map(({ rt: _rt, ...rec }) => rec));
  }

  /** An event about the agent as it is now. */
  publish(type: FleetEventType, a: Agent, message: string): void {
    this.events.publish({ type, agent: this.view(a), at: new Date(), message });
  }

  view(a: Agent): AgentSnapshot {
    return snapshot(a, this.socket);
  }

  /** Writes the agent's heartbeat file now; a failed write is logged and retried at the next visit. */
  beat(a: Agent, status: HeartbeatStatus, now = Date.now()): void {
    const at = new Date(now);
    try {
      writeHeartbeat(a.spec.heartbeatFile, {
        at,
        pid: a.panePid,
        status,
        runtime: a.spec.runtime,
        agent: a.spec.name,
        exitCode: a.exitStatus,
        paneId: a.paneId,
        socket: this.socket,
        restarts: a.restarts,
        // An agent that ended (or cannot be vouched for) does nothing the file could claim.
        activity: status === "ok" ? a.activity : "unknown",
      });
    } catch (err) {
      this.beatFaults.failed(a.spec.name, err, { agent: a.spec.name, file: a.spec.heartbeatFile });
      a.rt.finalBeat = status === "stopped" || status === "exited" ? status : undefined;
      return;
    }
    a.rt.finalBeat = undefined;
    this.beatFaults.succeeded(a.spec.name);
    a.lastHeartbeatAt = at;
    a.rt.staleReported = false;
    a.rt.nextBeatAt = now + a.spec.heartbeatIntervalSeconds * 1000;
  }
}
