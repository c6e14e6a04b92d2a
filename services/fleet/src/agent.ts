import type { RestartPolicyName } from "./restart-policy.js";
import type { Worktree } from "./worktrees.js";

export type AgentStateName = "running" | "exited" | "stopped" | "unknown";
export type ActivityName = "unknown" | "working" | "waiting" | "idle";

/** What the caller asked for; fixed for the agent's life (restarts reuse it). */
export interface AgentSpec {
  readonly name: string;
  readonly workdir: string;
  readonly command: string;
  readonly runtime: string;
  /** As requested; the PATH actually baked in is resolved at each launch. */
  readonly runtimeBinDirs: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly heartbeatIntervalSeconds: number;
  readonly heartbeatFile: string;
  readonly restartPolicy: RestartPolicyName;
  readonly maxRestarts: number;
  /** Where webhooks about this agent go ("" for the service's SKEIN_FLEET_WEBHOOK_URL). */
  readonly notifyUrl?: string | undefined;
  /** The worktree the fleet made for the agent (its workdir), if any. */
  readonly worktree?: Worktree | undefined;
}

/** An agent as the service tracks it. The persisted part is written to the state file. */
export interface AgentRecord {
  spec: AgentSpec;
  paneId: string;
  panePid: number;
  /** /proc start time of panePid at launch: the pid-reuse guard. -1 when the process was gone before it could be read. */
  pidStartTicks: number;
  state: AgentStateName;
  exitStatus: number | undefined;
  /** Start of the current run. */
  startedAt: Date;
  /** When the last run ended (exited or stopped); undefined while it runs. */
  endedAt: Date | undefined;
  lastHeartbeatAt: Date | undefined;
  /** Restarts done by the policy, over the agent's life. */
  restarts: number;
  /** Restarts since the last healthy run: drives backoff and giving up. */
  consecutiveRestarts: number;
  gaveUp: boolean;
  /** When a scheduled restart is due (kept across service restarts). */
  restartDueAt: Date | undefined;
  activity: ActivityName;
  activitySince: Date;
  /** While waiting: the prompt's last lines, or the agent's own message. */
  waitingFor: string;
  /** What `skein-fleet-signal` in the agent's pane must present (kept so adopted agents can still signal). */
  signalSecret: string;
}

/** Bookkeeping of the supervisor that is never persisted. */
export interface AgentRuntime {
  nextBeatAt: number;
  nextCheckAt: number;
  /** A supervision visit is queued or running (a stop may hold the agent's lock for its grace period). */
  visiting: boolean;
  /** Visits in a row at which the pid failed the liveness test while tmux called the pane alive. */
  pidMismatchVisits: number;
  /** Visits in a row that found the pane dead but tmux had no exit status for it yet. */
  statusWaitVisits: number;
  staleReported: boolean;
  /** When a visit first found the session gone while the process lived on. */
  paneLostAt: number | undefined;
  /** The process runs on without its pane (state "unknown"): only its end, or StopAgent, changes that. */
  paneLost: boolean;
  restartTimer: NodeJS.Timeout | undefined;
  /** A last beat (stopped, exited) that could not be written (a full disk): retried until it is, so no stale status=ok stays behind. */
  finalBeat: "stopped" | "exited" | undefined;
  /** The activity tracker's observations (see activity-tracker.ts). */
  seen: PaneObservation;
}

/** What the activity tracker remembers of an agent's pane between checks. */
export interface PaneObservation {
  /** tmux's window_activity (epoch seconds) at the last check. */
  activityTime: number;
  /** When the screen was last captured (ms), and its hash. */
  capturedAt: number;
  screenHash: string;
  /** When the screen was last seen to change (ms). */
  changedAt: number;
  /** The activity the last check observed, and in how many checks in a row. */
  candidate: ActivityName;
  candidateChecks: number;
  /** When the candidate was first seen (ms). */
  candidateSince: number;
  /** An activity the agent reported itself holds until its screen changes after it (-1: none). */
  signalledAt: number;
}

export type Agent = AgentRecord & { rt: AgentRuntime };

/** A record for an agent about to run (or just found running) in the given pane. */
export function newAgent(spec: AgentSpec, pane: { paneId: string; panePid: number } = { paneId: "", panePid: 0 }): Agent {
  return {
    spec,
    paneId: pane.paneId,
    panePid: pane.panePid,
    pidStartTicks: -1,
    state: "running",
    exitStatus: undefined,
    startedAt: new Date(),
    endedAt: undefined,
    lastHeartbeatAt: undefined,
    restarts: 0,
    consecutiveRestarts: 0,
    gaveUp: false,
    restartDueAt: undefined,
    activity: "unknown",
    activitySince: new Date(),
    waitingFor: "",
    signalSecret: "",
    rt: newRuntime(),
  };
}

export function newRuntime(): AgentRuntime {
  return {
    nextBeatAt: 0,
    nextCheckAt: 0,
    visiting: false,
    pidMismatchVisits: 0,
    statusWaitVisits: 0,
    staleReported: false,
    paneLostAt: undefined,
    paneLost: false,
    restartTimer: undefined,
    finalBeat: undefined,
    seen: newObservation(),
  };
}

export function newObservation(): PaneObservation {
  return { activityTime: -1, capturedAt: 0, screenHash: "", changedAt: 0, candidate: "unknown", candidateChecks: 0, candidateSince: 0, signalledAt: -1 };
}

/** A copy safe to hand out (events and responses must not change under the reader). */
export type AgentSnapshot = Readonly<AgentRecord> & { readonly tmuxSocket: string };

export function snapshot(a: AgentRecord, tmuxSocket: string): AgentSnapshot {
  // An agent that does not run does nothing: its activity is unknown from the moment it ended.
  const quiet = a.state === "running" ? {} : { activity: "unknown" as const, activitySince: a.endedAt ?? a.activitySince, waitingFor: "" };
  return { ...a, ...quiet, spec: { ...a.spec }, tmuxSocket };
}

export type FleetEventType = "started" | "exited" | "restarted" | "stopped" | "heartbeat-stale" | "gave-up" | "adopted" | "removed" | "activity";

export interface FleetEvent {
  readonly type: FleetEventType;
  readonly agent: AgentSnapshot;
  readonly at: Date;
  readonly message: string;
}
