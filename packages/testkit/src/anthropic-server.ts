import { split, startSseServer, type FakeModelServer, type ScriptedCompletion, type ScriptedReply, type SseEvent } from "./sse-server.js";

const ev = (event: string, data: Record<string, unknown>): SseEvent => ({ event, data: JSON.stringify({ type: event, ...data }) });

function start(input: number): SseEvent {
  return ev("message_start", {
    message: { id: "msg_fake", type: "message", role: "assistant", model: "fake-claude", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } },
  });
}

/** A Messages stream with text split into `pieces` deltas. */
export function anthropicText(text: string, opts: { pieces?: number; input?: number; output?: number } = {}): SseEvent[] {
  return [
    start(opts.input ?? 12),
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    ...split(text, opts.pieces ?? 3).map((t) => ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: t } })),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: opts.output ?? 6 } }),
    ev("message_stop", {}),
  ];
}

/** A tool_use block whose input JSON arrives split across `pieces` deltas. */
export function anthropicToolUse(call: { id: string; name: string; input: unknown }, opts: { pieces?: number } = {}): SseEvent[] {
  return [
    start(20),
    ev("content_block_start", { index: 0, content_block: { type: "tool_use", id: call.id, name: call.name, input: {} } }),
    ...split(JSON.stringify(call.input), opts.pieces ?? 3).map((p) => ev("content_block_delta", { index: 0, delta: { type: "input_json_delta", partial_json: p } })),
    ev("content_block_stop", { index: 0 }),
    ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 9 } }),
    ev("message_stop", {}),
  ];
}

/** A non-streaming Messages response answering `text`. */
export function anthropicMessage(text: string, opts: { input?: number; output?: number } = {}): ScriptedCompletion {
  return {
    body: {
      id: "msg_fake",
      type: "message",
      role: "assistant",
      model: "fake-claude",
      content: [{ type: "text", text }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: opts.input ?? 30, output_tokens: opts.output ?? 4 },
    },
  };
}

/** An Anthropic Messages API server; by default it streams "Hello from the fake Claude." and answers non-streaming requests "Fake Claude session". */
export function startAnthropicServer(
  opts: { fallback?: (body: Record<string, unknown>) => ScriptedReply; completionFallback?: (body: Record<string, unknown>) => ScriptedCompletion } = {},
): Promise<FakeModelServer> {
  return startSseServer({
    path: "/messages",
    fallback: opts.fallback ?? (() => ({ events: anthropicText("Hello from the fake Claude.") })),
    completionFallback: opts.completionFallback ?? (() => anthropicMessage("Fake Claude session")),
  });
}
