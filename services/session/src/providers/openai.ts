import OpenAI, { APIConnectionTimeoutError, APIError } from "openai";
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionContentPart, ChatCompletionMessageParam, ChatCompletionMessageToolCall } from "openai/resources/chat/completions";
import { isObject, isText, isToolRequest, isToolResponse, textOf, type GooseMessage } from "@skein/goose-sessions/goose-format";
import { guardedChunks, type GuardedChunks } from "./guarded-chunks.js";
import { classifySdkError, guardedCall, parseEventData, sdkClientOptions, streamedError } from "./guarded-stream.js";
import type { SseMessage } from "./sse-decoder.js";
import { pairedToolCallIds, toolResultText } from "./history.js";
import { ProviderError, type Completion, type CompletionRequest, type ModelChunk, type ModelRequest, type Provider } from "./provider.js";
import { ToolCallAssembler } from "./tool-call-assembler.js";
import { DirectFirstAttempt } from "./direct-first-attempt.js";

export interface ProviderOptions {
  readonly model: string;
  readonly baseURL: string | undefined;
  readonly apiKey: string | undefined;
  readonly idleTimeoutMs: number;
  readonly maxRetries: number;
  readonly maxTokens: number;
}

/** OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp, LM Studio, OpenRouter). */
export class OpenAIProvider implements Provider {
  readonly name = "openai";
  readonly model: string;
  private readonly client: OpenAI;
  private readonly direct: DirectFirstAttempt<OpenAI>;

  constructor(private readonly opts: ProviderOptions) {
    this.model = opts.model;
    this.client = new OpenAI(sdkClientOptions(opts));
    this.direct = new DirectFirstAttempt(this.client, "/chat/completions");
  }

  async complete(req: CompletionRequest): Promise<Completion> {
    const res = await guardedCall({
      signal: req.signal,
      timeoutMs: this.opts.idleTimeoutMs,
      call: (signal) => {
        const request = { model: this.model, messages: toOpenAIMessages(req.system, req.messages), stream: false as const };
        return this.direct.json(request, signal, (client) => client.chat.completions.create(request, { signal })) as Promise<ChatCompletion>;
      },
      classify,
    });
    const choice = isObject(res) && Array.isArray(res.choices) ? res.choices[0] : undefined;
    if (!choice || !isObject(choice.message)) throw new ProviderError("PROVIDER_MALFORMED_STREAM", "the provider answered without a choice");
    const u = res.usage;
    const input = u?.prompt_tokens ?? 0;
    const output = u?.completion_tokens ?? 0;
    return { text: typeof choice.message.content === "string" ? choice.message.content : "", usage: { input, output, total: u?.total_tokens ?? input + output } };
  }

  /** Not a generator: guardedChunks hands the loop each read's chunks from the body's own data event (see eachBatch). */
  stream(req: ModelRequest): GuardedChunks<ModelChunk> {
    const body = () => ({
      model: this.model,
      messages: toOpenAIMessages(req.system, req.messages),
      stream: true as const,
      stream_options: { include_usage: true },
      ...(req.tools.length > 0
        ? { tools: req.tools.map((t) => ({ type: "function" as const, function: { name: t.name, description: t.description, parameters: t.inputSchema } })) }
        : {}),
    });
    const calls = new ToolCallAssembler();
    let finish: string | undefined;
    let doneSeen = false;
    const options = {
      signal: req.signal,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      open: (signal: AbortSignal) => {
        const request = body();
        return this.direct.stream(request, signal, (client) => client.chat.completions.create(request, { signal }).asResponse());
      },
      classify,
    };
    const handle = (sse: SseMessage, out: ModelChunk[]): void => {
      // What the SDK's own stream does: nothing after [DONE] counts, `data.error` is a failure.
      if (doneSeen) return;
      if (sse.data.startsWith("[DONE]")) {
        doneSeen = true;
        return;
      }
      const chunk = parseEventData(sse.data) as ChatCompletionChunk & { error?: unknown };
      if (isObject(chunk) && chunk.error) throw streamedError(chunk.error);
      if (!isObject(chunk) || (!Array.isArray(chunk.choices) && !isObject(chunk.usage))) {
        throw new ProviderError("PROVIDER_MALFORMED_STREAM", "the provider sent a chunk with neither choices nor usage");
      }
      for (const choice of chunk.choices ?? []) {
        const delta = choice.delta ?? {};
        if (typeof delta.content === "string" && delta.content !== "") out.push({ type: "text", text: delta.content });
        for (const tc of delta.tool_calls ?? []) calls.add(tc.index ?? 0, { id: tc.id, name: tc.function?.name, args: tc.function?.arguments });
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (chunk.usage) {
        const u = chunk.usage;
        out.push({ type: "usage", input: u.prompt_tokens ?? 0, output: u.completion_tokens ?? 0, total: u.total_tokens ?? (u.prompt_tokens ?? 0) + (u.completion_tokens ?? 0) });
      }
    };
    return guardedChunks(options, handle, () => {
      if (finish === undefined) throw new ProviderError("PROVIDER_STREAM_CUT", "the provider's stream ended before a finish_reason");
      return [...calls.finish().map((c): ModelChunk => ({ type: "toolCall", id: c.id, call: c.call })), { type: "done", stopReason: finish }];
    });
  }
}

const classify = (err: unknown, opened: boolean): ProviderError => classifySdkError(err, opened, { APIError, APIConnectionTimeoutError });

/** goose history → chat messages. Tool results, stored as user messages by goose, become `tool` messages. */
export function toOpenAIMessages(system: string, history: readonly GooseMessage[]): ChatCompletionMessageParam[] {
  const paired = pairedToolCallIds(history);
  const out: ChatCompletionMessageParam[] = [{ role: "system", content: system }];
  for (const m of history) {
    if (m.role === "assistant") {
      const toolCalls: ChatCompletionMessageToolCall[] = m.content
        .filter(isToolRequest)
        .filter((c) => paired.has(c.id) && c.toolCall.status === "success")
        .map((c) => {
          const v = (c.toolCall as { value: { name: string; arguments: unknown } }).value;
          return { id: c.id, type: "function", function: { name: v.name, arguments: JSON.stringify(v.arguments ?? {}) } };
        });
      const text = textOf(m.content);
      if (text === "" && toolCalls.length === 0) continue;
      out.push({ role: "assistant", content: text === "" ? null : text, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) });
      continue;
    }
    for (const c of m.content) if (isToolResponse(c) && paired.has(c.id)) out.push({ role: "tool", tool_call_id: c.id, content: toolResultText(c) });
    const parts = m.content.flatMap((c): ChatCompletionContentPart[] => {
      if (isText(c)) return [{ type: "text" as const, text: c.text }];
      if (c.type === "image" && typeof c.data === "string") {
        return [{ type: "image_url" as const, image_url: { url: `data:${String(c.mimeType ?? "image/png")};base64,${c.data}` } }];
      }
      return [];
    });
    if (parts.length === 0) continue;
    out.push({ role: "user", content: parts.every((p) => p.type === "text") ? textOf(m.content) : parts });
  }
  return out;
}
