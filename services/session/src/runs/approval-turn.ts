import type { ApprovalGate, TurnResume } from "../agent-loop/loop.js";
import { DECLINED_RESPONSE, verdictFor } from "../agent-loop/tool-policy.js";
import { allows, approvalDecisionMessage, approvalRequestMessage, approvalState, keptDecisions, withPausedRun, type ApprovalAsk, type GooseMessage, type GooseMode } from "@skein/goose-sessions/goose-format";
import type { ToolSource } from "../extensions/tool-source.js";
import type { LoadedSession } from "@skein/goose-sessions";
import type { RunInput } from "./run-input.js";

/**
 * A run's side of tool approvals (approve / smart_approve): the gate that
 * pauses a turn on the calls the policy does not let through, and what a
 * resumed turn answers first. The approval flows across calls and replicas
 * are slots/approval-flows.ts.
 */

/** goose's chat mode: the model is offered no tools, and none runs. */
export const NO_TOOLS: ToolSource = {
  list: () => [],
  call: async (name) => ({ content: [{ type: "text", text: `tool ${name} does not exist` }], isError: true, error: `tool ${name} does not exist` }),
  close: async () => undefined,
};

/**
 * approve / smart_approve: each tool call the policy does not let through is
 * asked for (the asks are stored, never sent to the model: see agentView). The asks are stored as goose stores them, then recorded as the
 * session's paused run (what GetSession and a second Reply see); the caller
 * announces them once the run has ended and let go of the session, so
 * whoever hears of one can decide it at once, on any replica.
 */
export function approvalGate(r: RunInput, mode: GooseMode, record: (m: GooseMessage) => Promise<void>): ApprovalGate {
  return {
    review: async (requests) => {
      const denied = new Map<string, string>();
      const asks: ApprovalAsk[] = [];
      const known = new Set(r.tools.list().map((t) => t.name));
      for (const req of requests) {
        const call = req.toolCall;
        // A call that cannot run (unparseable, or a tool that does not exist) is answered with its error, never asked.
        if (call.status !== "success" || !known.has(call.value.name)) continue;
        const verdict = await verdictFor(mode, call.value.name, r.tools.list(), r.permissions);
        if (verdict === "deny") denied.set(req.id, DECLINED_RESPONSE);
        else if (verdict === "ask") asks.push({ id: req.id, toolName: call.value.name, arguments: call.value.arguments ?? {}, prompt: null });
      }
      if (asks.length === 0) return { paused: false, denied };
      for (const a of asks) await record(approvalRequestMessage(a, r.store.approvalForm === "legacy"));
      const pending = asks.map((a) => ({ id: a.id, toolName: a.toolName, arguments: a.arguments, prompt: a.prompt ?? "" }));
      await r.store.updateMetadata(r.sessionId, (m) => withPausedRun(m, { requestId: r.requestId, pending, pausedAt: Date.now() }));
      for (const p of pending) r.log.info({ toolName: p.toolName, toolCallId: p.id }, "tool call waits for approval");
      r.paused(pending);
      return { paused: true };
    },
  };
}

/**
 * What a paused turn answers first, rebuilt from the stored history as goose
 * does: decided calls by their decision, calls never asked by the policy
 * (always-deny, or let through), undecided ones denied when the resume says
 * so. Undefined when nothing is left to answer (another resume did it).
 */
export async function resumeOf(r: RunInput, mode: GooseMode, loaded: LoadedSession, record: (m: GooseMessage) => Promise<void>): Promise<TurnResume | undefined> {
  const state = approvalState(loaded.messages, keptDecisions(loaded.metadata));
  if (state.unanswered.length === 0) return undefined;
  const deny = r.resume?.deny;
  const denied = new Map<string, string>();
  for (const req of state.unanswered) {
    const decided = state.decided.get(req.id);
    if (decided !== undefined) {
      if (!allows(decided)) denied.set(req.id, DECLINED_RESPONSE);
    } else if (state.asked.has(req.id) || r.resume?.stop) {
      if (deny === undefined) return undefined;
      // goose ≤ 1.9's files keep no decisions: the tool result says why.
      if (state.asked.has(req.id) && r.store.approvalForm !== "legacy") await record(approvalDecisionMessage(req.id, "deny_once"));
      denied.set(req.id, deny);
    } else if (req.toolCall.status === "success" && (await verdictFor(mode, req.toolCall.value.name, r.tools.list(), r.permissions)) === "deny") {
      denied.set(req.id, DECLINED_RESPONSE);
    }
  }
  return { requests: state.unanswered, denied, stop: r.resume?.stop ?? false };
}
