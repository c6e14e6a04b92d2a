import { ProviderAbortedError, ProviderError, type ModelChunk } from "./provider.js";
import type { Readable } from "node:stream";
import { nodeBodyOf, nodeFetch } from "./node-fetch.js";
import { SseDecoder, type SseMessage } from "./sse-decoder.js";

export interface GuardedStreamOptions {
  /** The run's signal. */
  readonly signal: AbortSignal;
  /** Longest silence allowed, before the first byte and between bytes. */
  readonly idleTimeoutMs: number;
  /**
   * Sends the request and resolves with the raw streaming response (the SDK's
   * `.asResponse()`: its status checks and retries, not its SSE parser); the
   * request must stop when `signal` aborts.
   */
  open(signal: AbortSignal): Promise<Response>;
  /** Maps an SDK error to one of the provider error codes. `opened`: the stream had begun. */
  classify(err: unknown, opened: boolean): ProviderError;
}

/**
 * Reads a provider's SSE response body under an idle watchdog and turns every
 * way it can end into either normal completion, ProviderAbortedError (the run
 * was stopped) or a classified ProviderError. The watchdog is re-armed by
 * every chunk of bytes, not by parsed events: a provider slowly sending one
 * huge event is alive, not stalled. The body is parsed by skein's SseDecoder,
 * linear in the bytes received however long a line is. The events of one
 * network read come out together (one resumption per read, not per event:
 * a fast provider packs hundreds of deltas into one read).
 */
export async function* guardedStream(opts: GuardedStreamOptions): AsyncGenerator<SseMessage[]> {
  const idle = new AbortController();
  // One timer for the whole stream: a read only notes the time (re-arming a timer per read showed
  // in the reply profile); when the timer fires early because bytes came since, it waits the rest.
  let lastActivity = performance.now();
  const check = () => {
    const silentFor = performance.now() - lastActivity;
    if (silentFor >= opts.idleTimeoutMs) idle.abort();
    else timer = setTimeout(check, opts.idleTimeoutMs - silentFor);
  };
  let timer = setTimeout(check, opts.idleTimeoutMs);
  // Aborted once the stream is over: Node keeps an AbortSignal.any() signal that has listeners
  // (the SDK's) strongly referenced until it aborts, so a finished request must abort it to be freed.
  const finished = new AbortController();
  const signal = AbortSignal.any([opts.signal, idle.signal, finished.signal]);
  const stopped = () => {
    if (opts.signal.aborted) return new ProviderAbortedError("the run was stopped");
    if (idle.signal.aborted) return new ProviderError("PROVIDER_TIMEOUT", `the provider sent nothing for ${opts.idleTimeoutMs} ms`);
    return undefined;
  };
  let opened = false;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let nodeBody: Readable | undefined;
  let drained = false;
  try {
    const res = await opts.open(signal);
    opened = true;
    lastActivity = performance.now();
    if (!res.body) throw new ProviderError("PROVIDER_MALFORMED_STREAM", "the provider answered without a response body");
    const decoder = new SseDecoder();
    // nodeFetch's responses are read as a Node stream: far less work per network read than fetch's web stream.
    nodeBody = nodeBodyOf(res);
    if (nodeBody) {
      for await (const chunk of nodeBody) {
        lastActivity = performance.now();
        const events = decoder.push(chunk as Buffer);
        if (events.length > 0) yield events;
      }
    } else {
      reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        lastActivity = performance.now();
        const events = decoder.push(value);
        if (events.length > 0) yield events;
      }
    }
    drained = true;
    const rest = decoder.end();
    if (rest.length > 0) yield rest;
  } catch (err) {
    throw stopped() ?? (err instanceof ProviderError ? err : opts.classify(err, opened));
  } finally {
    clearTimeout(timer);
    // Left early (an error, or the consumer stopped): free the connection.
    if (reader && !drained) reader.cancel().catch(() => undefined);
    if (nodeBody && !drained) nodeBody.destroy();
    finished.abort();
  }
  const why = stopped();
  if (why) throw why;
}

/**
 * A provider's chunks a network read at a time: `handle` turns each SSE event
 * into chunks (pushed to `out`). The chunks of one read come out as one batch;
 * when an event fails, the chunks before it still come out first, as they
 * would one by one.
 */
export async function* chunkBatches(reads: AsyncIterable<SseMessage[]>, handle: (sse: SseMessage, out: ModelChunk[]) => void): AsyncGenerator<ModelChunk[]> {
  for await (const events of reads) {
    const out: ModelChunk[] = [];
    let failure: { err: unknown } | undefined;
    try {
      for (const sse of events) handle(sse, out);
    } catch (err) {
      failure = { err };
    }
    if (out.length > 0) yield out;
    if (failure) throw failure.err;
  }
}

/** The JSON of one SSE event's data; a parse failure is the provider's malformed stream. */
export function parseEventData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch (err) {
    throw new ProviderError("PROVIDER_MALFORMED_STREAM", `the provider sent data that is not valid JSON: ${(err as Error).message}`);
  }
}

/** An `error` object the provider sent inside the stream, as the run's error. */
export function streamedError(error: unknown): ProviderError {
  const message = typeof error === "object" && error !== null && typeof (error as { message?: unknown }).message === "string" ? (error as { message: string }).message : JSON.stringify(error);
  // Bounded: the message travels in an error event and into logs.
  return new ProviderError("PROVIDER_ERROR", `the provider reported an error: ${message.slice(0, 2_000)}`);
}

/**
 * A non-streaming SDK call under the same rules: `timeoutMs` bounds the whole
 * call (there is nothing to watch between bytes), aborts and failures come out
 * as ProviderAbortedError / classified ProviderError.
 */
export async function guardedCall<T>(opts: {
  signal: AbortSignal;
  timeoutMs: number;
  call: (signal: AbortSignal) => Promise<T>;
  classify: GuardedStreamOptions["classify"];
}): Promise<T> {
  // A cleared timer, not AbortSignal.timeout: that one (and whatever listens to it) lives until it fires.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), opts.timeoutMs);
  const finished = new AbortController();
  try {
    return await opts.call(AbortSignal.any([opts.signal, timeout.signal, finished.signal]));
  } catch (err) {
    if (opts.signal.aborted) throw new ProviderAbortedError("the request was stopped");
    if (timeout.signal.aborted) throw new ProviderError("PROVIDER_TIMEOUT", `the provider did not answer within ${opts.timeoutMs} ms`);
    throw err instanceof ProviderError ? err : opts.classify(err, false);
  } finally {
    clearTimeout(timer);
    // See guardedStream: frees the combined signal the SDK listens on.
    finished.abort();
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Both official SDKs share one error hierarchy: APIError (with `status` when
 * the server answered), its subclass APIConnectionTimeoutError, and a bare
 * APIError for an error event inside the stream.
 */
export function classifySdkError(err: unknown, opened: boolean, sdk: { APIError: ErrorClass; APIConnectionTimeoutError: ErrorClass }): ProviderError {
  if (err instanceof sdk.APIConnectionTimeoutError) return new ProviderError("PROVIDER_TIMEOUT", "the provider did not answer in time");
  if (err instanceof sdk.APIError) {
    const status = (err as { status?: unknown }).status;
    if (typeof status === "number") return new ProviderError("PROVIDER_HTTP_ERROR", `the provider answered HTTP ${status}: ${err.message}`);
    if (err.constructor === sdk.APIError) return new ProviderError("PROVIDER_ERROR", `the provider reported an error: ${err.message}`);
  }
  return classifyTransport(err, opened);
}

/** Client settings common to both SDKs. */
export function sdkClientOptions(o: { apiKey: string | undefined; baseURL: string | undefined; maxRetries: number }) {
  return {
    // Local servers need no key, but the SDKs insist on one.
    apiKey: o.apiKey ?? "not-needed",
    baseURL: o.baseURL,
    maxRetries: o.maxRetries,
    // Streamed bodies read as Node streams (see nodeFetch).
    fetch: nodeFetch,
    // The idle watchdog bounds silence; a whole-request timeout must not cut long replies.
    timeout: 24 * 3_600_000,
    logLevel: "off" as const,
  };
}

/** The SDK-independent part of classifying: parse errors and cut connections. */
export function classifyTransport(err: unknown, opened: boolean): ProviderError {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof SyntaxError) return new ProviderError("PROVIDER_MALFORMED_STREAM", `the provider sent data that is not valid JSON: ${message}`);
  if (opened) return new ProviderError("PROVIDER_STREAM_CUT", `the provider's stream broke off: ${describe(err)}`);
  return new ProviderError("PROVIDER_CONNECTION_ERROR", `could not reach the provider: ${describe(err)}`);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
}
