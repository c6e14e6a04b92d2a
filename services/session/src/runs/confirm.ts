import { FailedPreconditionError, NotFoundError } from "@skein/runtime";
import { approvalDecisionMessage, approvalState, waiting, keptDecisions, pausedRun, withKeptDecision, type Permission } from "@skein/goose-sessions/goose-format";
import type { SessionStore } from "@skein/goose-sessions";

/** Where goose keeps "always allow" / "always deny" (permission.yaml's `user` lists). */
export interface UserPermissions {
  setUser(tool: string, level: "always_allow" | "never_allow"): Promise<void>;
}

export interface RecordedDecision {
  readonly toolName: string;
  /** False when the same decision was stored already (a replay, answered OK as goose does). */
  readonly recorded: boolean;
  /** Set when no ask of the turn waits any more: the paused reply's request id, to resume it under ("" when none is recorded). */
  readonly resumeAs: string | undefined;
}

/**
 * ConfirmToolCall's domain step, checked against the stored history (goose's
 * rules, persist_tool_confirmation_decisions): the call must be asked for in
 * the current turn (else NOT_FOUND); a different earlier decision, or a call
 * already answered, is FAILED_PRECONDITION; the same decision again is fine.
 * An always-* decision goes into goose's permission.yaml first, then the
 * decision message is stored.
 */
export async function recordDecision(
  store: SessionStore,
  permissions: UserPermissions,
  sessionId: string,
  toolCallId: string,
  permission: Permission,
): Promise<RecordedDecision> {
  const loaded = await store.load(sessionId);
  if (!loaded) throw new NotFoundError(`session ${sessionId} does not exist`);
  const state = approvalState(loaded.messages, keptDecisions(loaded.metadata));
  const ask = state.asked.get(toolCallId);
  if (!ask) throw new NotFoundError(`no tool call ${toolCallId} waits for approval in session ${sessionId}`);
  const resumeAs = (left: number) => (left === 0 ? (pausedRun(loaded.metadata)?.requestId ?? "") : undefined);
  const before = state.decided.get(toolCallId);
  // A replay resumes too while the reply is still recorded as paused (the first call's resume may have failed).
  if (before === permission) {
    const stillPaused = pausedRun(loaded.metadata) !== undefined && !state.answered.has(toolCallId);
    return { toolName: ask.toolName, recorded: false, resumeAs: stillPaused ? resumeAs(waiting(state).length) : undefined };
  }
  if (before !== undefined) throw new FailedPreconditionError(`tool call ${toolCallId} was already decided (${before})`);
  if (state.answered.has(toolCallId)) throw new FailedPreconditionError(`tool call ${toolCallId} already has its result`);
  if (permission === "always_allow") await permissions.setUser(ask.toolName, "always_allow");
  if (permission === "always_deny") await permissions.setUser(ask.toolName, "never_allow");
  // goose's message first (what any process resumes from; goose ≤ 1.9's files have none), then
  // skein's record, so Session.pending_approvals drops the call at once.
  if (store.approvalForm !== "legacy") await store.append(sessionId, approvalDecisionMessage(toolCallId, permission));
  await store.updateMetadata(sessionId, (m) => withKeptDecision(m, toolCallId, permission));
  const left = waiting(state).filter((a) => a.id !== toolCallId).length;
  return { toolName: ask.toolName, recorded: true, resumeAs: resumeAs(left) };
}
