import { afterQueuedWrites, untilAborted } from "@skein/runtime";
import { eachBatch, ProviderAbortedError, ProviderError, type ModelChunk, type Provider, type ProviderErrorCode } from "../providers/provider.js";
import {
  message,
  textItem,
  toolResponseItem,
  type GooseMessage,
  type ToolRequestItem,
  type ToolResponseItem,
} from "@skein/goose-sessions/goose-format";
import type { ToolSource } from "../extensions/tool-source.js";
import { capToolCall, capToolContent, capToolError, modelOutputNote, type OutputLimits } from "./output-limits.js";

export type FinishKind = "stop" | "cancelled" | "error" | "max_turns";
/** How a turn ends: finished, or paused waiting for tool approvals (resumed later, possibly elsewhere). */
export type TurnEnd = FinishKind | "paused";

/**
 * Decides the tool calls of one model message before they run (absent in
 * goose's auto mode). Asks it records itself (persisted, then announced);
 * `paused` ends the turn until they are decided.
 */
export interface ApprovalGate {
  review(requests: readonly ToolRequestItem[]): Promise<{ paused: true } | { paused: false; denied: ReadonlyMap<string, string> }>;
}

/** A paused turn going on: these requests are answered first (denied ones with their reason), then the model is called again unless `stop`. */
export interface TurnResume {
  readonly requests: readonly ToolRequestItem[];
  readonly denied: ReadonlyMap<string, string>;
  readonly stop: boolean;
}

/** Where the loop's output goes: `message` must persist before it announces. */
export interface AgentSink {
  message(m: GooseMessage): Promise<void>;
  /** The reply's last message (the model answered without tool calls): as `message`, and the sink may store it with what closes the run. */
  lastMessage?(m: GooseMessage): Promise<void>;
  textDelta(text: string): void;
  usage(u: { input: number; output: number; total: number }): void;
  error(code: ProviderErrorCode, message: string): void;
}

export interface AgentTurnInput {
  readonly provider: Provider;
  readonly tools: ToolSource;
  readonly system: string;
  /** The conversation so far, ending with the user's new message; the loop appends to it. */
  readonly history: GooseMessage[];
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly signal: AbortSignal;
  readonly sink: AgentSink;
  readonly approvals?: ApprovalGate;
  readonly resume?: TurnResume;
}

/** Text deltas are passed on in pieces of at most this many characters, whatever the provider's chunk size. */
const MAX_DELTA_CHARS = 64 * 1024;

export const CANCELLED_TOOL_ERROR = "the reply was stopped before this tool call finished";

/**
 * goose's agent loop: call the model, persist its message, run the tools it
 * asked for, persist their results as a user message, and call the model again
 * until it answers without tool calls. Every tool request gets a response, also
 * when the run is stopped mid-way, so the stored history stays valid.
 */
export async function runAgent(input: AgentTurnInput): Promise<TurnEnd> {
  const { provider, tools, history, signal, sink } = input;
  const { maxModelOutputChars: maxText } = input.limits;
  const resume = input.resume;
  if (resume) {
    await append(message("user", await callTools(resume.requests, tools, signal, input.limits.maxToolResultChars, resume.denied)));
    if (resume.stop || signal.aborted) return "cancelled";
  }
  for (let turn = 1; ; turn++) {
    if (signal.aborted) return "cancelled";
    const answer = new ModelAnswer(maxText, sink, textDelta);
    try {
      // Each provider read's chunks handed over from the read itself (no promise per read where the stream can push).
      await eachBatch(provider.stream({ system: input.system, messages: history, tools: tools.list(), signal }), answer.take);
    } catch (err) {
      const { text } = answer;
      if (signal.aborted || err instanceof ProviderAbortedError) {
        // What the model said before the interruption stays, as goose's CLI keeps the streamed message.
        if (text !== "") await keepWhenStopped(message("assistant", [textItem(text)]));
        return "cancelled";
      }
      if (err instanceof ProviderError) {
        sink.error(err.code, err.message);
        return "error";
      }
      throw err;
    }
    let { text } = answer;
    const { requests } = answer;
    if (answer.textChars > text.length) {
      const note = modelOutputNote(answer.textChars, maxText);
      text += note;
      textDelta(note);
    }
    const content = [...(text !== "" ? [textItem(text)] : []), ...requests];
    if (content.length === 0) return "stop";
    // The streamed text reaches the client before the message's store: a
    // provider that sends its whole answer in one read would otherwise have
    // every delta wait behind the synchronous SQLite write and what follows it.
    await afterQueuedWrites();
    await append(message("assistant", content), requests.length === 0);
    if (requests.length === 0) return "stop";

    let denied: ReadonlyMap<string, string> | undefined;
    if (input.approvals) {
      const reviewed = await input.approvals.review(requests);
      if (reviewed.paused) return "paused";
      denied = reviewed.denied;
    }
    await append(message("user", await callTools(requests, tools, signal, input.limits.maxToolResultChars, denied)));
    if (signal.aborted) return "cancelled";
    if (turn >= input.maxTurns) {
      await append(message("assistant", [textItem(`I've reached the maximum number of turns (${input.maxTurns}) for one reply. Tell me to continue if you want me to go on.`)]));
      return "max_turns";
    }
  }

  /** A stopped run's last words: stored when its writes still go through (not after a lost lease or a store fault). */
  async function keepWhenStopped(m: GooseMessage): Promise<void> {
    try {
      await append(m);
    } catch {
      // The stream already carried them; the run ends cancelled either way.
    }
  }

  function textDelta(t: string): void {
    for (let at = 0; at < t.length; at += MAX_DELTA_CHARS) sink.textDelta(t.slice(at, at + MAX_DELTA_CHARS));
  }

  /** `last`: the reply's last message (an answer without tool calls), handed to the sink's lastMessage when it has one. */
  async function append(m: GooseMessage, last = false): Promise<void> {
    await (last && sink.lastMessage ? sink.lastMessage(m) : sink.message(m));
    history.push(m);
  }
}

/** What one model call answered so far: its text (capped), how much text there was, its tool calls. */
class ModelAnswer {
  /**
   * The kept text's deltas, joined once when the answer is read: `text +=`
   * per delta made a string node per delta that lived as long as the reply
   * (so was copied out of the young generation with it) and was flattened
   * again at the store (the paced profile at 200 replies).
   */
  private parts: string[] = [];
  private keptChars = 0;
  textChars = 0;
  readonly requests: ToolRequestItem[] = [];

  /** The text kept so far (at most the cap). */
  get text(): string {
    if (this.parts.length > 1) this.parts = [this.parts.join("")];
    return this.parts[0] ?? "";
  }

  constructor(
    private readonly maxText: number,
    private readonly sink: AgentSink,
    private readonly textDelta: (t: string) => void,
  ) {}

  /** One provider read's chunks, handled in one go. */
  readonly take = (chunks: readonly ModelChunk[]): void => {
    for (const chunk of chunks) {
      if (chunk.type === "text") {
        // Beyond the cap the text is counted, not kept: the note after the stream says how much there was.
        const kept = this.keptChars < this.maxText ? chunk.text.slice(0, this.maxText - this.keptChars) : "";
        this.textChars += chunk.text.length;
        if (kept !== "") {
          this.parts.push(kept);
          this.keptChars += kept.length;
        }
        this.textDelta(kept);
      } else if (chunk.type === "toolCall") this.requests.push({ type: "toolRequest", id: chunk.id, toolCall: capToolCall(chunk.call, this.maxText) });
      else if (chunk.type === "usage") this.sink.usage(chunk);
    }
  };
}

async function callTools(
  requests: readonly ToolRequestItem[],
  tools: ToolSource,
  signal: AbortSignal,
  maxResultChars: number,
  denied?: ReadonlyMap<string, string>,
): Promise<ToolResponseItem[]> {
  // ExtensionSet.call answers an unknown name with the same error, but only
  // after the cancellation check below: checked here first, a stopped run still
  // records "does not exist" for a tool the model made up.
  const known = new Set(tools.list().map((t) => t.name));
  return Promise.all(
    requests.map(async (r): Promise<ToolResponseItem> => {
      const call = r.toolCall;
      if (call.status !== "success") return toolResponseItem(r.id, { status: "error", error: call.error });
      const { name, arguments: args } = call.value;
      if (!known.has(name)) return toolResponseItem(r.id, { status: "error", error: `tool ${name} does not exist` });
      const refusal = denied?.get(r.id);
      if (refusal !== undefined) return toolResponseItem(r.id, { status: "error", error: refusal });
      if (signal.aborted) return toolResponseItem(r.id, { status: "error", error: CANCELLED_TOOL_ERROR });
      try {
        const result = await untilAborted(tools.call(name, args, signal), signal);
        if (result === undefined) return toolResponseItem(r.id, { status: "error", error: CANCELLED_TOOL_ERROR });
        if (result.isError) {
          const msg = result.content.map((c) => (typeof c.text === "string" ? c.text : JSON.stringify(c))).join("\n");
          return toolResponseItem(r.id, { status: "error", error: capToolError(msg || `tool ${name} failed`, maxResultChars) });
        }
        return toolResponseItem(r.id, { status: "success", value: capToolContent(result.content, maxResultChars) });
      } catch (err) {
        return toolResponseItem(r.id, { status: "error", error: err instanceof Error ? err.message : String(err) });
      }
    }),
  );
}
