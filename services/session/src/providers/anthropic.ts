import Anthropic, { APIConnectionTimeoutError, APIError } from "@anthropic-ai/sdk";
import type { MessageParam, RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { isObject, isText, isToolRequest, isToolResponse, toolResultIsError, type GooseMessage } from "@skein/goose-sessions/goose-format";
import { guardedChunks, type GuardedChunks } from "./guarded-chunks.js";
import { classifySdkError, guardedCall, parseEventData, sdkClientOptions, streamedError } from "./guarded-stream.js";
import type { SseMessage } from "./sse-decoder.js";
import { pairedToolCallIds, toolResultText } from "./history.js";
import type { ProviderOptions } from "./openai.js";
import { ProviderError, type Completion, type CompletionRequest, type ModelChunk, type ModelRequest, type Provider } from "./provider.js";
import { ToolCallAssembler } from "./tool-call-assembler.js";

type Block = Exclude<MessageParam["content"], string>[number];

/** Anthropic Messages streaming. */
export class AnthropicProvider implements Provider {
  readonly name = "anthropic";
  readonly model: string;
  private readonly client: Anthropic;

  constructor(private readonly opts: ProviderOptions) {
    this.model = opts.model;
    this.client = new Anthropic(sdkClientOptions(opts));
  }

  async complete(req: CompletionRequest): Promise<Completion> {
    const res = await guardedCall({
      signal: req.signal,
      timeoutMs: this.opts.idleTimeoutMs,
      call: (signal) =>
        this.client.messages.create({ model: this.model, max_tokens: this.opts.maxTokens, system: req.system, messages: toAnthropicMessages(req.messages), stream: false }, { signal }),
      classify,
    });
    if (!Array.isArray(res?.content)) throw new ProviderError("PROVIDER_MALFORMED_STREAM", "the provider answered without content");
    const text = res.content.map((b) => (b.type === "text" ? b.text : "")).join("");
    const input = res.usage?.input_tokens ?? 0;
    const output = res.usage?.output_tokens ?? 0;
    return { text, usage: { input, output, total: input + output } };
  }

  /** Not a generator: guardedChunks hands the loop each read's chunks from the body's own data event (see eachBatch). */
  stream(req: ModelRequest): GuardedChunks<ModelChunk> {
    const body = () => ({
      model: this.model,
      max_tokens: this.opts.maxTokens,
      system: req.system,
      messages: toAnthropicMessages(req.messages),
      stream: true as const,
      ...(req.tools.length > 0
        ? { tools: req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: { ...t.inputSchema, type: "object" as const } })) }
        : {}),
    });
    const calls = new ToolCallAssembler();
    let input = 0;
    let output = 0;
    let stop: string | undefined;
    let stopped = false;
    const options = {
      signal: req.signal,
      idleTimeoutMs: this.opts.idleTimeoutMs,
      open: (signal: AbortSignal) => this.client.messages.create(body(), { signal }).asResponse(),
      classify,
    };
    const handle = (sse: SseMessage, out: ModelChunk[]): void => {
      // What the SDK's own stream does: pings and unnamed events are skipped, `error` is a failure.
      if (sse.event === null || sse.event === "ping") return;
      if (sse.event === "error") {
        const body = safeParse(sse.data);
        throw streamedError(isObject(body) && isObject(body.error) ? body.error : (body ?? sse.data));
      }
      if (sse.data === "") return;
      const ev = parseEventData(sse.data) as RawMessageStreamEvent;
      if (!isObject(ev)) throw new ProviderError("PROVIDER_MALFORMED_STREAM", `the provider sent a ${sse.event} event that is not a JSON object`);
      switch (ev.type) {
        case "message_start":
          input = ev.message.usage.input_tokens ?? 0;
          output = ev.message.usage.output_tokens ?? 0;
          break;
        case "content_block_start":
          if (ev.content_block.type === "text" && ev.content_block.text) out.push({ type: "text", text: ev.content_block.text });
          if (ev.content_block.type === "tool_use") calls.add(ev.index, { id: ev.content_block.id, name: ev.content_block.name });
          break;
        case "content_block_delta":
          if (ev.delta.type === "text_delta") out.push({ type: "text", text: ev.delta.text });
          else if (ev.delta.type === "input_json_delta") calls.add(ev.index, { args: ev.delta.partial_json });
          break;
        case "message_delta":
          if (ev.delta.stop_reason) stop = ev.delta.stop_reason;
          if (typeof ev.usage?.output_tokens === "number") output = ev.usage.output_tokens;
          break;
        case "message_stop":
          stopped = true;
          break;
        default:
          break;
      }
    };
    return guardedChunks(options, handle, (): ModelChunk[] => {
      if (!stopped) throw new ProviderError("PROVIDER_STREAM_CUT", "the provider's stream ended before message_stop");
      return [
        { type: "usage", input, output, total: input + output },
        ...calls.finish().map((c): ModelChunk => ({ type: "toolCall", id: c.id, call: c.call })),
        { type: "done", stopReason: stop ?? "end_turn" },
      ];
    });
  }
}

const classify = (err: unknown, opened: boolean): ProviderError => classifySdkError(err, opened, { APIError, APIConnectionTimeoutError });

function safeParse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}

/** goose history → Messages API turns; consecutive same-role messages are merged, as the API wants alternation. */
export function toAnthropicMessages(history: readonly GooseMessage[]): MessageParam[] {
  const paired = pairedToolCallIds(history);
  const out: MessageParam[] = [];
  for (const m of history) {
    const blocks: Block[] = [];
    for (const c of m.content) {
      if (isText(c) && c.text !== "") blocks.push({ type: "text", text: c.text });
      else if (isToolRequest(c) && m.role === "assistant" && paired.has(c.id) && c.toolCall.status === "success") {
        blocks.push({ type: "tool_use", id: c.id, name: c.toolCall.value.name, input: c.toolCall.value.arguments ?? {} });
      } else if (isToolResponse(c) && m.role === "user" && paired.has(c.id)) {
        blocks.push({ type: "tool_result", tool_use_id: c.id, content: toolResultText(c), is_error: toolResultIsError(c) });
      }
    }
    if (blocks.length === 0) continue;
    const prev = out[out.length - 1];
    if (prev && prev.role === m.role) (prev.content as Block[]).push(...blocks);
    else out.push({ role: m.role, content: blocks });
  }
  return out;
}
