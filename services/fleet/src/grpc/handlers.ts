import { fleet } from "@skein/proto";
import { FailedPreconditionError, InvalidArgumentError, type ServiceImplementation } from "@skein/runtime";
import { restartPolicyName, toProtoAgent, toProtoEvent } from "./agent-proto.js";
import type { Fleet } from "../fleet.js";
import * as v from "../validate.js";

const DEFAULT_GRACE_SECONDS = 10;
const DEFAULT_CAPTURE_LINES = 100;

/** Thin gRPC layer: validate at the edge, call the fleet, map to messages. */
export function fleetHandlers(f: Fleet): ServiceImplementation<typeof fleet.FleetServiceService> {
  return {
    async startAgent(req) {
      const name = v.agentName("name", req.name);
      if (req.expectedTmuxSocket !== undefined && req.expectedTmuxSocket !== f.socket) {
        throw new FailedPreconditionError(
          `this fleet service runs agents on tmux socket ${JSON.stringify(f.socket)} (SKEIN_TMUX_SOCKET), not ${JSON.stringify(req.expectedTmuxSocket)}`,
        );
      }
      const restartPolicy = restartPolicyName(req.restartPolicy);
      if (!restartPolicy) throw new InvalidArgumentError("restart_policy", "unknown value");
      const worktree = req.worktree && v.worktree("worktree", req.worktree);
      const { agent, alreadyRunning } = await f.start({
        name,
        // A worktree is the agent's workdir.
        workdir: worktree && req.workdir === "" ? "" : v.existingDirectory("workdir", req.workdir),
        worktree,
        notifyUrl: req.notifyUrl === undefined ? undefined : v.notifyUrl("notify_url", req.notifyUrl),
        command: v.command("command", req.command),
        runtime: v.label("runtime", req.runtime),
        runtimeBinDirs: v.binDirs("runtime_bin_dirs", req.runtimeBinDirs),
        env: v.env("env", req.env),
        heartbeatIntervalSeconds: v.heartbeatInterval("heartbeat_interval_seconds", req.heartbeatIntervalSeconds),
        heartbeatDir: req.heartbeatDir === undefined ? undefined : v.confinedDirectory("heartbeat_dir", req.heartbeatDir, f.heartbeatRoots),
        restartPolicy,
        maxRestarts: req.maxRestarts === undefined ? undefined : v.intInRange("max_restarts", req.maxRestarts, 0, 1000),
      });
      return fleet.StartAgentResponse.fromPartial({ agent: toProtoAgent(agent), alreadyRunning });
    },

    async stopAgent(req) {
      const name = v.agentName("name", req.name);
      const grace = req.graceSeconds === undefined ? DEFAULT_GRACE_SECONDS : v.intInRange("grace_seconds", req.graceSeconds, 0, 3600);
      return fleet.StopAgentResponse.fromPartial({ agent: toProtoAgent(await f.stop(name, grace)) });
    },

    async removeAgent(req) {
      return fleet.RemoveAgentResponse.fromPartial({ agent: toProtoAgent(await f.remove(v.agentName("name", req.name), req.force)) });
    },

    async getAgent(req) {
      return fleet.GetAgentResponse.fromPartial({ agent: toProtoAgent(f.get(v.agentName("name", req.name))) });
    },

    async listAgents() {
      return fleet.ListAgentsResponse.fromPartial({ agents: f.list().map(toProtoAgent) });
    },

    async *watchAgents(req, ctx) {
      const names = new Set(req.names.map((n, i) => v.agentName(`names[${i}]`, n)));
      // Follows until the client leaves or the service begins to drain.
      for await (const e of f.events.subscribe([ctx.signal, ctx.draining], 1024, "watcher fell behind; watch again")) {
        if (names.size === 0 || names.has(e.agent.spec.name)) yield toProtoEvent(e);
      }
    },

    async sendInput(req) {
      const name = v.agentName("name", req.name);
      if (req.text === "" && !req.pressEnter) throw new InvalidArgumentError("text", "must not be empty unless press_enter is set");
      await f.sendInput(name, v.text("text", req.text), req.pressEnter);
      return fleet.SendInputResponse.fromPartial({});
    },

    async captureOutput(req) {
      const name = v.agentName("name", req.name);
      const lines = req.lines === 0 ? DEFAULT_CAPTURE_LINES : v.intInRange("lines", req.lines, 1, 10_000);
      return fleet.CaptureOutputResponse.fromPartial({ text: await f.capture(name, lines) });
    },
  };
}
