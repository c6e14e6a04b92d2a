// goose's approval messages and the state rebuilt from them (ApprovalState::from_messages's rules).
import { describe, expect, it } from "vitest";
import { approvalDecisionMessage, approvalRequestMessage, approvalState, waiting, message, textItem, toolRequestItem, toolResponseItem } from "@skein/goose-sessions/goose-format";

const call = (id: string) => toolRequestItem(id, { status: "success", value: { name: "dev__shell", arguments: { command: id } } });
const ask = (id: string, legacy = false) => approvalRequestMessage({ id, toolName: "dev__shell", arguments: { command: id }, prompt: null }, legacy);

describe("approval messages", () => {
  it("are written as current goose writes them: actionRequired, user-only; the decision visible to nobody", () => {
    const m = ask("c1");
    expect(m).toMatchObject({
      role: "assistant",
      content: [{ type: "actionRequired", data: { actionType: "toolConfirmation", id: "c1", toolName: "dev__shell", arguments: { command: "c1" }, prompt: null } }],
      metadata: { userVisible: true, agentVisible: false },
    });
    expect(approvalDecisionMessage("c1", "always_allow")).toMatchObject({
      role: "user",
      content: [{ type: "actionRequired", data: { actionType: "toolConfirmationResponse", id: "c1", permission: "always_allow" } }],
      metadata: { userVisible: false, agentVisible: false },
    });
    expect(ask("c1", true).content).toEqual([{ type: "toolConfirmationRequest", id: "c1", toolName: "dev__shell", arguments: { command: "c1" }, prompt: null }]);
  });

  it("rebuild what waits from the current turn only: asked, neither decided nor answered", () => {
    const history = [
      message("user", [textItem("earlier")]),
      message("assistant", [call("old")]),
      ask("old"),
      message("user", [toolResponseItem("old", { status: "error", error: "denied" })]),
      message("user", [textItem("now")]),
      message("assistant", [call("a"), call("b"), call("c")]),
      ask("a"),
      ask("b", true),
      approvalDecisionMessage("a", "deny_once"),
    ];
    const state = approvalState(history);
    expect(state.unanswered.map((r) => r.id)).toEqual(["a", "b", "c"]);
    expect([...state.decided]).toEqual([["a", "deny_once"]]);
    expect(waiting(state).map((a) => a.id)).toEqual(["b"]);
    // Decisions kept outside the history (JSONL) count the same.
    expect(waiting(approvalState(history, { b: "allow_once", x: "not a permission" }))).toEqual([]);
  });
});
