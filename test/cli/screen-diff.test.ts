import { fleet } from "@skein/proto";
import { describe, expect, it } from "vitest";
import { hasEnded } from "../../packages/cli/src/commands/fleet-logs-follow.js";
import { captureLines, unseenLines } from "../../packages/cli/src/screen-diff.js";

describe("unseenLines (fleet logs -f)", () => {
  it("prints what was appended, while the capture window grows or slides", () => {
    expect(unseenLines(["a", "b"], ["a", "b", "c", "d"])).toEqual(["c", "d"]);
    expect(unseenLines(["a", "b", "c"], ["b", "c", "d"])).toEqual(["d"]);
    expect(unseenLines(["a", "b", "c"], ["a", "b", "c"])).toEqual([]);
    expect(unseenLines([], ["x"])).toEqual(["x"]);
    expect(unseenLines(["x"], [])).toEqual([]);
  });

  it("lines repeated in the output are not taken for lines already printed", () => {
    expect(unseenLines(["a", "x", "x"], ["a", "x", "x", "x"])).toEqual(["x"]);
    expect(unseenLines(["x", "x"], ["x", "x", "x", "x"])).toEqual(["x", "x"]);
  });

  it("prints a last line again when it changed (printed in parts, or typed at a prompt)", () => {
    expect(unseenLines(["a", "b", "> he"], ["a", "b", "> hello", "ok"])).toEqual(["> hello", "ok"]);
  });

  it("prints the whole capture when nothing lines up (screen cleared or redrawn)", () => {
    expect(unseenLines(["a", "b"], ["c", "d"])).toEqual(["c", "d"]);
  });

  it("splits capture text into lines", () => {
    expect(captureLines("")).toEqual([]);
    expect(captureLines("a\n\nb\n")).toEqual(["a", "", "b"]);
  });
});

describe("hasEnded (when fleet logs -f stops following)", () => {
  const { AGENT_STATE_RUNNING, AGENT_STATE_EXITED, AGENT_STATE_STOPPED } = fleet.AgentState;
  const P = fleet.RestartPolicy;
  const agent = (a: Partial<fleet.Agent>) => fleet.Agent.fromPartial(a);

  it("follows a running agent and one whose restart is coming; ends on stop, give-up or an exit that is final", () => {
    expect(hasEnded(agent({ state: AGENT_STATE_RUNNING }))).toBe(false);
    expect(hasEnded(agent({ state: AGENT_STATE_STOPPED }))).toBe(true);
    expect(hasEnded(agent({ state: AGENT_STATE_EXITED, restartPolicy: P.RESTART_POLICY_NEVER, exitStatus: 1 }))).toBe(true);
    expect(hasEnded(agent({ state: AGENT_STATE_EXITED, restartPolicy: P.RESTART_POLICY_ALWAYS, exitStatus: 0 }))).toBe(false);
    expect(hasEnded(agent({ state: AGENT_STATE_EXITED, restartPolicy: P.RESTART_POLICY_ON_FAILURE, exitStatus: 1 }))).toBe(false);
    expect(hasEnded(agent({ state: AGENT_STATE_EXITED, restartPolicy: P.RESTART_POLICY_ON_FAILURE, exitStatus: 0 }))).toBe(true);
    expect(hasEnded(agent({ state: AGENT_STATE_EXITED, restartPolicy: P.RESTART_POLICY_ALWAYS, gaveUp: true }))).toBe(true);
  });
});
