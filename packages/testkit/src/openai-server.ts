import { split, startSseServer, type FakeModelServer, type FirstByteTiming, type ScriptedCompletion, type ScriptedReply, type SseEvent } from "./sse-server.js";

export interface Usage {
  readonly prompt: number;
  readonly completion: number;
}

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): SseEvent => ({
  data: JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1_753_704_324, model: "fake-model", choices, ...extra }),
});
const usageChunk = (u: Usage): SseEvent => chunk([], { usage: { prompt_tokens: u.prompt, completion_tokens: u.completion, total_tokens: u.prompt + u.completion } });
const DONE: SseEvent = { data: "[DONE]" };

/** Streamed assistant text in `pieces` deltas, a finish chunk, a usage chunk and [DONE]. */
export function openaiText(text: string, opts: { pieces?: number; usage?: Usage | null } = {}): SseEvent[] {
  const usage = opts.usage === undefined ? { prompt: 10, completion: 5 } : opts.usage;
  return [
    chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]),
    ...split(text, opts.pieces ?? 3).map((t) => chunk([{ index: 0, delta: { content: t }, finish_reason: null }])),
    chunk([{ index: 0, delta: {}, finish_reason: "stop" }]),
    ...(usage ? [usageChunk(usage)] : []),
    DONE,
  ];
}

/** Tool calls whose id/name come first and whose JSON arguments arrive split across `pieces` chunks. */
export function openaiToolCalls(calls: { id: string; name: string; args: unknown }[], opts: { pieces?: number; text?: string; usage?: Usage } = {}): SseEvent[] {
  const events: SseEvent[] = [chunk([{ index: 0, delta: { role: "assistant", content: opts.text ?? null }, finish_reason: null }])];
  calls.forEach((c, index) => {
    events.push(chunk([{ index: 0, delta: { tool_calls: [{ index, id: c.id, type: "function", function: { name: c.name, arguments: "" } }] }, finish_reason: null }]));
    const args = typeof c.args === "string" ? c.args : JSON.stringify(c.args);
    for (const piece of split(args, opts.pieces ?? 3)) {
      events.push(chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] }, finish_reason: null }]));
    }
  });
  events.push(chunk([{ index: 0, delta: {}, finish_reason: "tool_calls" }]), usageChunk(opts.usage ?? { prompt: 20, completion: 8 }), DONE);
  return events;
}

/** A data line that is not JSON, after a valid first chunk. */
export function openaiMalformed(): SseEvent[] {
  return [openaiText("ok", { pieces: 1 })[1]!, { data: "{this is not json" }];
}

/** A non-streaming chat.completion answering `text`. */
export function openaiCompletion(text: string, usage: Usage = { prompt: 30, completion: 4 }): ScriptedCompletion {
  return {
    body: {
      id: "chatcmpl-fake",
      object: "chat.completion",
      created: 1_753_704_324,
      model: "fake-model",
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }],
      usage: { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion },
    },
  };
}

/**
 * An OpenAI-compatible chat-completions server; by default it streams "Hello
 * from the fake model." and answers non-streaming requests "Fake model session".
 */
export function startOpenAIServer(
  opts: {
    fallback?: (body: Record<string, unknown>) => ScriptedReply;
    completionFallback?: (body: Record<string, unknown>) => ScriptedCompletion;
    keepAliveTimeoutMs?: number;
    onFirstByte?: (body: Record<string, unknown>, timing: FirstByteTiming) => void;
    host?: string;
  } = {},
): Promise<FakeModelServer> {
  return startSseServer({
    path: "/chat/completions",
    fallback: opts.fallback ?? (() => ({ events: openaiText("Hello from the fake model.") })),
    completionFallback: opts.completionFallback ?? (() => openaiCompletion("Fake model session")),
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs,
    onFirstByte: opts.onFirstByte,
    host: opts.host,
  });
}
