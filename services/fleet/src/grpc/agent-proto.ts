import { fleet } from "@skein/proto";
import type { ActivityName, AgentSnapshot, AgentStateName, FleetEvent, FleetEventType } from "../agent.js";
import type { RestartPolicyName } from "../restart-policy.js";

const STATE: Record<AgentStateName, fleet.AgentState> = {
  running: fleet.AgentState.AGENT_STATE_RUNNING,
  exited: fleet.AgentState.AGENT_STATE_EXITED,
  stopped: fleet.AgentState.AGENT_STATE_STOPPED,
  unknown: fleet.AgentState.AGENT_STATE_UNKNOWN,
};

const ACTIVITY: Record<ActivityName, fleet.Activity> = {
  unknown: fleet.Activity.ACTIVITY_UNKNOWN,
  working: fleet.Activity.ACTIVITY_WORKING,
  waiting: fleet.Activity.ACTIVITY_WAITING,
  idle: fleet.Activity.ACTIVITY_IDLE,
};

const POLICY: Record<RestartPolicyName, fleet.RestartPolicy> = {
  never: fleet.RestartPolicy.RESTART_POLICY_NEVER,
  "on-failure": fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE,
  always: fleet.RestartPolicy.RESTART_POLICY_ALWAYS,
};

const EVENT: Record<FleetEventType, fleet.AgentEventType> = {
  started: fleet.AgentEventType.AGENT_EVENT_TYPE_STARTED,
  exited: fleet.AgentEventType.AGENT_EVENT_TYPE_EXITED,
  restarted: fleet.AgentEventType.AGENT_EVENT_TYPE_RESTARTED,
  stopped: fleet.AgentEventType.AGENT_EVENT_TYPE_STOPPED,
  "heartbeat-stale": fleet.AgentEventType.AGENT_EVENT_TYPE_HEARTBEAT_STALE,
  "gave-up": fleet.AgentEventType.AGENT_EVENT_TYPE_GAVE_UP,
  adopted: fleet.AgentEventType.AGENT_EVENT_TYPE_ADOPTED,
  removed: fleet.AgentEventType.AGENT_EVENT_TYPE_REMOVED,
  activity: fleet.AgentEventType.AGENT_EVENT_TYPE_ACTIVITY,
};

export function restartPolicyName(p: fleet.RestartPolicy): RestartPolicyName | undefined {
  switch (p) {
    case fleet.RestartPolicy.RESTART_POLICY_UNSPECIFIED:
    case fleet.RestartPolicy.RESTART_POLICY_NEVER:
      return "never";
    case fleet.RestartPolicy.RESTART_POLICY_ON_FAILURE:
      return "on-failure";
    case fleet.RestartPolicy.RESTART_POLICY_ALWAYS:
      return "always";
    default:
      return undefined;
  }
}

export function toProtoAgent(a: AgentSnapshot): fleet.Agent {
  return fleet.Agent.fromPartial({
    name: a.spec.name,
    workdir: a.spec.workdir,
    command: a.spec.command,
    runtime: a.spec.runtime,
    paneId: a.paneId,
    panePid: a.panePid,
    state: STATE[a.state],
    exitStatus: a.state === "exited" ? a.exitStatus : undefined,
    startedAt: a.startedAt,
    lastHeartbeatAt: a.lastHeartbeatAt,
    restarts: a.restarts,
    restartPolicy: POLICY[a.spec.restartPolicy],
    maxRestarts: a.spec.maxRestarts,
    gaveUp: a.gaveUp,
    heartbeatFile: a.spec.heartbeatFile,
    heartbeatIntervalSeconds: a.spec.heartbeatIntervalSeconds,
    tmuxSocket: a.tmuxSocket,
    runtimeBinDirs: [...a.spec.runtimeBinDirs],
    endedAt: a.state === "exited" || a.state === "stopped" ? a.endedAt : undefined,
    activity: ACTIVITY[a.activity],
    activitySince: a.activitySince,
    waitingFor: a.activity === "waiting" ? a.waitingFor : "",
    notifyUrl: a.spec.notifyUrl ?? "",
    worktree: a.spec.worktree && {
      repo: a.spec.worktree.repo,
      branch: a.spec.worktree.branch,
      path: a.spec.worktree.path,
      setupCommand: a.spec.worktree.setupCommand,
      setupLog: a.spec.worktree.setupLog,
    },
  });
}

export function toProtoEvent(e: FleetEvent): fleet.WatchAgentsResponse {
  return fleet.WatchAgentsResponse.fromPartial({ type: EVENT[e.type], agent: toProtoAgent(e.agent), at: e.at, message: e.message });
}
