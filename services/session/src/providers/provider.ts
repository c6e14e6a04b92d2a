import type { ToolSpec } from "../extensions/tool-source.js";
import type { GooseMessage, ToolCallResult } from "@skein/goose-sessions/goose-format";

export interface ModelRequest {
  readonly system: string;
  readonly messages: readonly GooseMessage[];
  readonly tools: readonly ToolSpec[];
  /** The run's signal: cancel, delete or shutdown. */
  readonly signal: AbortSignal;
}

/** What every provider's stream is normalized to. Tool calls arrive assembled. */
export type ModelChunk =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "toolCall"; readonly id: string; readonly call: ToolCallResult }
  | { readonly type: "usage"; readonly input: number; readonly output: number; readonly total: number }
  | { readonly type: "done"; readonly stopReason: string };

/** A one-shot, non-streaming request without tools (descriptions, summaries). */
export interface CompletionRequest {
  readonly system: string;
  readonly messages: readonly GooseMessage[];
  readonly signal: AbortSignal;
}

export interface Completion {
  readonly text: string;
  readonly usage: { readonly input: number; readonly output: number; readonly total: number };
}

export interface Provider {
  readonly name: string;
  readonly model: string;
  /** One non-streaming model call; throws ProviderError, or ProviderAbortedError when the signal aborts. */
  complete(req: CompletionRequest): Promise<Completion>;
  /**
   * Streams one model call, in batches: the chunks of one network read come
   * together (a batch is never empty). Ends with `done`, or throws
   * ProviderError; when the request's signal aborts it throws ProviderAbortedError.
   */
  stream(req: ModelRequest): ModelStream;
}

/**
 * One model call's batches. A stream may also hand them to a callback as
 * they come (`forEachBatch`: from where its iterator left off, resolved at
 * its end, rejected as the iterator would throw): then no promise is made per
 * network read. Read it with `eachBatch`, which takes that way when there is one.
 */
export interface ModelStream extends AsyncIterable<readonly ModelChunk[]> {
  forEachBatch?(onBatch: (chunks: readonly ModelChunk[]) => void): Promise<void>;
}

/** Every batch of `stream` to `onBatch`, in order, without a promise per batch when the stream can push. */
export async function eachBatch(stream: ModelStream, onBatch: (chunks: readonly ModelChunk[]) => void): Promise<void> {
  if (stream.forEachBatch) return stream.forEachBatch(onBatch);
  for await (const chunks of stream) onBatch(chunks);
}

export type ProviderErrorCode =
  | "PROVIDER_HTTP_ERROR"
  | "PROVIDER_TIMEOUT"
  | "PROVIDER_STREAM_CUT"
  | "PROVIDER_MALFORMED_STREAM"
  | "PROVIDER_CONNECTION_ERROR"
  | "PROVIDER_ERROR";

export class ProviderError extends Error {
  override name = "ProviderError";
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The caller stopped the request (cancel, delete, shutdown): not a provider failure. */
export class ProviderAbortedError extends Error {
  override name = "ProviderAbortedError";
}
