import { fleet, session } from "@skein/proto";
import { describe, expect, it } from "vitest";
import { completeJson } from "../../packages/cli/src/proto-json.js";

describe("--json output keeps zero and empty values", () => {
  it("a fresh session: zero counts, empty strings and lists are present; unknown optional counts are null", () => {
    const res = session.ListSessionsResponse.fromPartial({ sessions: [{ id: "s1", workingDir: "/w", updatedAt: new Date("2026-01-02T03:04:05Z") }] });
    // What ts-proto alone writes: the zero values are gone.
    expect(session.ListSessionsResponse.toJSON(res)).toEqual({ sessions: [{ id: "s1", workingDir: "/w", updatedAt: "2026-01-02T03:04:05.000Z" }] });
    expect(completeJson(session, "ListSessionsResponse", res)).toEqual({
      sessions: [
        {
          id: "s1",
          workingDir: "/w",
          description: "",
          messageCount: 0,
          totalTokens: null,
          inputTokens: null,
          outputTokens: null,
          accumulatedTotalTokens: null,
          accumulatedInputTokens: null,
          accumulatedOutputTokens: null,
          updatedAt: "2026-01-02T03:04:05.000Z",
          runningRequestId: "",
          extensions: [],
          lastSeq: 0,
          mode: "PERMISSION_MODE_UNSPECIFIED",
          pendingApprovals: [],
        },
      ],
      nextPageToken: "",
    });
  });

  it("keeps set optional zeros, nested messages, and only the set member of a oneof", () => {
    const res = session.GetSessionResponse.fromPartial({
      session: { id: "s", totalTokens: 0 },
      messages: [{ id: "m", role: session.Role.ROLE_USER, content: [{ kind: { $case: "text", value: { text: "" } } }] }],
    });
    const out = completeJson(session, "GetSessionResponse", res) as { session: Record<string, unknown>; messages: Record<string, unknown>[] };
    expect(out.session.totalTokens).toBe(0);
    expect(out.messages[0]).toEqual({ id: "m", role: "ROLE_USER", created: null, content: [{ text: { text: "" } }], truncated: false });
  });

  it("fleet agents: zero enums by name, zero numbers, false booleans, empty maps", () => {
    const res = fleet.ListAgentsResponse.fromPartial({ agents: [{ name: "a" }] });
    const agent = (completeJson(fleet, "ListAgentsResponse", res) as { agents: Record<string, unknown>[] }).agents[0]!;
    expect(agent).toMatchObject({ name: "a", panePid: 0, state: "AGENT_STATE_UNSPECIFIED", exitStatus: null, restarts: 0, gaveUp: false, runtimeBinDirs: [], startedAt: null });
    // Every field the contract declares is there: ts-proto's base object has them all.
    expect(Object.keys(agent).sort()).toEqual(Object.keys(fleet.Agent.fromPartial({})).sort());
  });
});
