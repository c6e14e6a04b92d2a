import { isObject, isToolRequest, isToolResponse, message, type ContentItem, type GooseMessage, type JsonObject, type ToolRequestItem } from "./messages.js";

/**
 * Tool approvals as current goose stores them (conversation/message.rs,
 * agents/state_machine/ops_tool_approval.rs): the request is an assistant
 * message, user-visible only, holding
 *   {"type":"actionRequired","data":{"actionType":"toolConfirmation","id","toolName","arguments","prompt"}}
 * and the decision a user message visible to nobody holding
 *   {"type":"actionRequired","data":{"actionType":"toolConfirmationResponse","id","permission"}}
 * with goose's Permission in snake_case. goose rebuilds its approval state from
 * these messages (ApprovalState::from_messages); so does skein.
 */

/** goose's Permission values (`cancel` is goose's own, never written by skein). */
export const PERMISSIONS = ["allow_once", "always_allow", "deny_once", "always_deny"] as const;
export type Permission = (typeof PERMISSIONS)[number];

export function isPermission(v: unknown): v is Permission {
  return (PERMISSIONS as readonly unknown[]).includes(v);
}

export function allows(p: Permission): boolean {
  return p === "allow_once" || p === "always_allow";
}

const USER_ONLY = { userVisible: true, agentVisible: false };
const NOBODY = { userVisible: false, agentVisible: false };

export interface ApprovalAsk {
  readonly id: string;
  readonly toolName: string;
  readonly arguments: JsonObject;
  readonly prompt: string | null;
}

/**
 * goose's `Message::assistant().with_action_required(…).user_only()`; with
 * `legacy` (goose ≤ 1.9's JSONL files, which know no actionRequired) the
 * older `toolConfirmationRequest` item those versions read.
 */
export function approvalRequestMessage(ask: ApprovalAsk, legacy = false): GooseMessage {
  const fields = { id: ask.id, toolName: ask.toolName, arguments: ask.arguments, prompt: ask.prompt };
  const item = legacy ? { type: "toolConfirmationRequest", ...fields } : { type: "actionRequired", data: { actionType: "toolConfirmation", ...fields } };
  return { ...message("assistant", [item]), metadata: USER_ONLY };
}

/** goose's persisted decision (persist_tool_confirmation_decisions): a user message visible to nobody. */
export function approvalDecisionMessage(id: string, permission: Permission): GooseMessage {
  return { ...message("user", [{ type: "actionRequired", data: { actionType: "toolConfirmationResponse", id, permission } }]), metadata: NOBODY };
}

function actionData(c: ContentItem): JsonObject | undefined {
  if (c.type === "toolConfirmationRequest") return { ...c, actionType: "toolConfirmation" };
  return c.type === "actionRequired" && isObject(c.data) ? c.data : undefined;
}

/** The approval state of the current turn, rebuilt from the stored messages. */
export interface ApprovalState {
  /** Tool requests of the turn without a response, in order. */
  readonly unanswered: readonly ToolRequestItem[];
  /** Asked for (toolConfirmation), by tool call id. */
  readonly asked: ReadonlyMap<string, ApprovalAsk>;
  /** Decided (toolConfirmationResponse), by tool call id. */
  readonly decided: ReadonlyMap<string, Permission>;
  /** Tool call ids with a response. */
  readonly answered: ReadonlySet<string>;
}

/**
 * The messages since the turn began: after the last user message a person
 * wrote (visible to the user and not a tool result), as goose's active_turn_messages.
 */
export function currentTurn(messages: readonly GooseMessage[]): readonly GooseMessage[] {
  const start = messages.findLastIndex(
    (m) => m.role === "user" && !(isObject(m.metadata) && m.metadata.userVisible === false) && !m.content.some(isToolResponse) && !m.content.some((c) => actionData(c)),
  );
  return start < 0 ? messages : messages.slice(start);
}

/** `kept`: decisions kept outside the messages (JSONL sessions, see goose-format/skein-metadata.ts). */
export function approvalState(messages: readonly GooseMessage[], kept: Readonly<Record<string, unknown>> = {}): ApprovalState {
  const turn = currentTurn(messages);
  const answered = new Set<string>();
  const asked = new Map<string, ApprovalAsk>();
  const decided = new Map<string, Permission>();
  for (const [id, p] of Object.entries(kept)) if (isPermission(p)) decided.set(id, p);
  const requests: ToolRequestItem[] = [];
  for (const m of turn) {
    for (const c of m.content) {
      if (isToolResponse(c)) answered.add(c.id);
      else if (isToolRequest(c)) requests.push(c);
      else {
        const d = actionData(c);
        if (!d || typeof d.id !== "string") continue;
        if (d.actionType === "toolConfirmation") {
          asked.set(d.id, { id: d.id, toolName: String(d.toolName ?? ""), arguments: isObject(d.arguments) ? d.arguments : {}, prompt: typeof d.prompt === "string" ? d.prompt : null });
        } else if (d.actionType === "toolConfirmationResponse" && isPermission(d.permission)) {
          decided.set(d.id, d.permission);
        }
      }
    }
  }
  return { unanswered: requests.filter((r) => !answered.has(r.id)), asked, decided, answered };
}

/** What waits now: asked, neither decided nor answered. */
export function waiting(state: ApprovalState): ApprovalAsk[] {
  return [...state.asked.values()].filter((a) => !state.decided.has(a.id) && !state.answered.has(a.id));
}
