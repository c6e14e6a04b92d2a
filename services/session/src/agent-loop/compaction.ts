import type { Provider } from "../providers/provider.js";
import { toolResultText } from "../providers/history.js";
import { isObject, isText, isToolRequest, isToolResponse, message, textItem, textOf, type GooseMessage } from "@skein/goose-sessions/goose-format";

/**
 * Compaction as goose (1.8/1.9, the last JSONL versions) records it: nothing is
 * deleted. The older messages stay in the file, marked
 * `"metadata": {"userVisible": true, "agentVisible": false}`; then come an
 * assistant marker `summarizationRequested {msg}` (user-only), the summary as a
 * user message and goose's continuation note as an assistant message (both
 * agent-only), then the recent messages that were kept. What the model sees is
 * every message that is not agent-invisible: summary, note, recent messages.
 * Older goose versions ignore the `metadata` key and read the file unchanged.
 */
export const COMPACTION_MARKER = "Conversation compacted and summarized";
export const CONTINUATION_NOTE =
  "The previous message contains a summary that was prepared because a context limit was reached.\nDo not mention that you read a summary or that conversation summarization occurred\nJust continue the conversation naturally based on the summarized context";
const SUMMARY_REQUEST = "Please summarize the conversation history provided in the system prompt.";
const PART_CHARS = 4_000;

const USER_ONLY = { userVisible: true, agentVisible: false };
const AGENT_ONLY = { userVisible: false, agentVisible: true };

export function isAgentVisible(m: GooseMessage): boolean {
  return !(isObject(m.metadata) && m.metadata.agentVisible === false);
}

/** The conversation the model is sent. */
export function agentView(messages: readonly GooseMessage[]): GooseMessage[] {
  return messages.filter(isAgentVisible);
}

/**
 * Older messages to summarize and recent ones to keep: the recent part starts
 * at the last user message with text (a real turn, never a tool result, so no
 * tool response is parted from its request). Undefined when nothing is older.
 */
export function splitForCompaction(visible: readonly GooseMessage[]): { old: GooseMessage[]; recent: GooseMessage[] } | undefined {
  const start = visible.findLastIndex((m) => m.role === "user" && textOf(m.content) !== "" && !m.content.some(isToolResponse));
  if (start <= 0) return undefined;
  return { old: visible.slice(0, start), recent: visible.slice(start) };
}

export interface Compacted {
  /** The whole new file content after the metadata line. */
  readonly messages: GooseMessage[];
  readonly summary: string;
  readonly usage: { input: number; output: number; total: number };
}

/** Summarizes the older messages with the model; undefined when there is nothing old enough. */
export async function compact(provider: Provider, all: readonly GooseMessage[], signal: AbortSignal): Promise<Compacted | undefined> {
  const split = splitForCompaction(agentView(all));
  if (!split) return undefined;
  const res = await provider.complete({ system: summarySystemPrompt(split.old), messages: [message("user", [textItem(SUMMARY_REQUEST)])], signal });
  const summary = res.text.trim();
  if (summary === "") throw new Error("the model returned an empty summary");
  const old = new Set(split.old);
  const recent = new Set(split.recent);
  const kept = all.filter((m) => !recent.has(m)).map((m) => (old.has(m) ? { ...m, metadata: { ...(isObject(m.metadata) ? m.metadata : {}), ...USER_ONLY } } : m));
  return {
    messages: [
      ...kept,
      { ...message("assistant", [{ type: "summarizationRequested", msg: COMPACTION_MARKER }]), metadata: USER_ONLY },
      { ...message("user", [textItem(summary)]), metadata: AGENT_ONLY },
      { ...message("assistant", [textItem(CONTINUATION_NOTE)]), metadata: AGENT_ONLY },
      ...split.recent,
    ],
    summary,
    usage: res.usage,
  };
}

function summarySystemPrompt(old: readonly GooseMessage[]): string {
  return [
    "You summarize a conversation between a user and an AI agent so the agent can continue it without the full history.",
    "Keep: the user's goals and constraints, decisions made, what was done (files, commands, tool results that matter), open questions and next steps.",
    "Write plain prose or short lists, no preamble.",
    "",
    "The conversation:",
    ...old.map(render),
  ].join("\n");
}

function render(m: GooseMessage): string {
  const parts = m.content.map((c) => {
    if (isText(c)) return c.text;
    if (isToolRequest(c)) return c.toolCall.status === "success" ? `[tool call ${c.toolCall.value.name} ${JSON.stringify(c.toolCall.value.arguments)}]` : `[invalid tool call: ${c.toolCall.error}]`;
    if (isToolResponse(c)) return `[tool result: ${toolResultText(c)}]`;
    return `[${c.type}]`;
  });
  const text = parts.join("\n");
  return `${m.role}: ${text.length > PART_CHARS ? `${text.slice(0, PART_CHARS)}…` : text}`;
}
