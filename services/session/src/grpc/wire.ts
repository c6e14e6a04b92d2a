import { session as pb } from "@skein/proto";
import type { FinishKind } from "../agent-loop/loop.js";
import type { ExtensionConfig, ToolSpec } from "../extensions/index.js";
import type { LiveState, SessionEvent } from "../runs/events.js";
import { isObject, isText, isToolRequest, isToolResponse, toolResultItems, keptDecisions, pausedRun, sessionMode, type ContentItem, type GooseMessage, type GooseMode, type PendingApproval, type Permission } from "@skein/goose-sessions/goose-format";
import type { SessionInfo } from "@skein/goose-sessions";

/** Conversions between the domain (goose JSON, run events) and the proto messages. */

export function sessionToProto(info: SessionInfo, live: LiveState, extensions: readonly ExtensionConfig[], messageCount?: number): pb.Session {
  const m = info.metadata;
  const opt = (v: number | null | undefined) => (typeof v === "number" ? v : undefined);
  return pb.Session.fromPartial({
    id: info.id,
    workingDir: m.working_dir,
    description: m.description,
    messageCount: messageCount ?? m.message_count,
    totalTokens: opt(m.total_tokens),
    inputTokens: opt(m.input_tokens),
    outputTokens: opt(m.output_tokens),
    accumulatedTotalTokens: opt(m.accumulated_total_tokens),
    accumulatedInputTokens: opt(m.accumulated_input_tokens),
    accumulatedOutputTokens: opt(m.accumulated_output_tokens),
    updatedAt: info.updatedAt,
    runningRequestId: live.runningRequestId,
    lastSeq: live.lastSeq,
    extensions: extensions.map((e) => ({ name: e.name, cmd: e.cmd, args: e.args, env: e.env, timeoutSeconds: e.timeoutSeconds })),
    mode: modeToProto(sessionMode(m)),
    pendingApprovals: undecided(m).map(approvalToProto),
  });
}

/** The paused reply's tool calls nobody has decided yet. */
function undecided(m: SessionInfo["metadata"]): readonly PendingApproval[] {
  const paused = pausedRun(m);
  if (!paused) return [];
  const decided = keptDecisions(m);
  return paused.pending.filter((p) => !(p.id in decided));
}

export function approvalToProto(p: PendingApproval): pb.ToolApprovalRequest {
  return { toolCallId: p.id, toolName: p.toolName, arguments: p.arguments, prompt: p.prompt };
}

const MODES: Record<GooseMode, pb.PermissionMode> = {
  auto: pb.PermissionMode.PERMISSION_MODE_AUTO,
  approve: pb.PermissionMode.PERMISSION_MODE_APPROVE,
  smart_approve: pb.PermissionMode.PERMISSION_MODE_SMART_APPROVE,
  chat: pb.PermissionMode.PERMISSION_MODE_CHAT,
};

export function modeToProto(m: GooseMode): pb.PermissionMode {
  return MODES[m];
}

/** Undefined for UNSPECIFIED (and unknown numbers): the caller's default applies. */
export function modeFromProto(m: pb.PermissionMode | undefined): GooseMode | undefined {
  return (Object.keys(MODES) as GooseMode[]).find((k) => MODES[k] === m);
}

const PERMISSION_OF: Partial<Record<pb.ToolPermission, Permission>> = {
  [pb.ToolPermission.TOOL_PERMISSION_ALLOW_ONCE]: "allow_once",
  [pb.ToolPermission.TOOL_PERMISSION_ALWAYS_ALLOW]: "always_allow",
  [pb.ToolPermission.TOOL_PERMISSION_DENY_ONCE]: "deny_once",
  [pb.ToolPermission.TOOL_PERMISSION_ALWAYS_DENY]: "always_deny",
};

export function permissionFromProto(p: pb.ToolPermission): Permission | undefined {
  return PERMISSION_OF[p];
}

export function toolToProto(t: ToolSpec): pb.Tool {
  return pb.Tool.fromPartial({ name: t.name, description: t.description, inputSchema: t.inputSchema, extension: t.extension });
}

export function messageToProto(m: GooseMessage): pb.Message {
  return pb.Message.fromPartial({
    id: m.id ?? "",
    role: m.role === "user" ? pb.Role.ROLE_USER : pb.Role.ROLE_ASSISTANT,
    created: new Date(m.created * 1000),
    content: m.content.map(contentToProto),
  });
}

function contentToProto(c: ContentItem): pb.Content {
  const str = (v: unknown) => (typeof v === "string" ? v : "");
  if (isText(c)) return { kind: { $case: "text", value: { text: c.text } } };
  if (isToolRequest(c)) {
    const call = c.toolCall;
    const value =
      call.status === "success" && isObject(call.value)
        ? { id: c.id, name: str(call.value.name), arguments: isObject(call.value.arguments) ? call.value.arguments : {}, error: "" }
        : { id: c.id, name: "", arguments: undefined, error: str((call as { error?: unknown }).error) || "invalid tool call" };
    return { kind: { $case: "toolRequest", value } };
  }
  if (isToolResponse(c)) {
    const r = c.toolResult;
    const value =
      r.status === "success"
        ? { id: c.id, content: toolResultItems(r.value), error: "" }
        : { id: c.id, content: [], error: str((r as { error?: unknown }).error) || "tool call failed" };
    return { kind: { $case: "toolResponse", value } };
  }
  if (c.type === "image" && typeof c.data === "string") return { kind: { $case: "image", value: { data: c.data, mimeType: str(c.mimeType) } } };
  if (c.type === "thinking" && typeof c.thinking === "string") return { kind: { $case: "thinking", value: { thinking: c.thinking, signature: str(c.signature) } } };
  if (c.type === "redactedThinking" && typeof c.data === "string") return { kind: { $case: "redactedThinking", value: { data: c.data } } };
  return { kind: { $case: "other", value: c } };
}

const FINISH: Record<FinishKind, pb.FinishReason> = {
  stop: pb.FinishReason.FINISH_REASON_STOP,
  cancelled: pb.FinishReason.FINISH_REASON_CANCELLED,
  error: pb.FinishReason.FINISH_REASON_ERROR,
  max_turns: pb.FinishReason.FINISH_REASON_MAX_TURNS,
};

/** The shared shape of ReplyResponse and WatchSessionResponse. Built as one literal per kind: a spread of a shared head showed in the reply profile. */
export function eventToProto(e: SessionEvent): pb.ReplyResponse {
  const { seq, requestId, sessionId } = e;
  const ev = e.event;
  switch (ev.kind) {
    case "textDelta":
      return { seq, requestId, sessionId, event: { $case: "textDelta", value: { text: ev.text } } };
    case "message":
      return { seq, requestId, sessionId, event: { $case: "message", value: { message: messageToProto(ev.message) } } };
    case "usage":
      return { seq, requestId, sessionId, event: { $case: "usage", value: { inputTokens: ev.input, outputTokens: ev.output, totalTokens: ev.total } } };
    case "finished":
      return { seq, requestId, sessionId, event: { $case: "finished", value: { reason: FINISH[ev.reason] } } };
    case "error":
      return { seq, requestId, sessionId, event: { $case: "error", value: { code: ev.code, message: ev.message } } };
    case "approval":
      return { seq, requestId, sessionId, event: { $case: "approvalRequired", value: approvalToProto(ev.approval) } };
  }
}
