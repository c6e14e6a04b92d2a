import { ProviderAbortedError, ProviderError } from "./provider.js";
import type { NodeBody } from "./direct-first-attempt.js";
import { nodeFetch } from "./node-fetch.js";

export interface GuardedStreamOptions {
  /** The run's signal. */
  readonly signal: AbortSignal;
  /** Longest silence allowed, before the first byte and between bytes. */
  readonly idleTimeoutMs: number;
  /**
   * Sends the request and resolves with the raw streaming response (the SDK's
   * `.asResponse()`: its status checks and retries, not its SSE parser), or
   * a successful response's body as a Node stream (DirectFirstAttempt); the
   * request must stop when `signal` aborts.
   */
  open(signal: AbortSignal): Promise<Response | NodeBody>;
  /** Maps an SDK error to one of the provider error codes. `opened`: the stream had begun. */
  classify(err: unknown, opened: boolean): ProviderError;
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
  classify: (err: unknown, opened: boolean) => ProviderError;
}): Promise<T> {
  // A cleared timer, not AbortSignal.timeout: that one (and whatever listens to it) lives until it fires.
  const link = linkedSignal([opts.signal]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    link.abort();
  }, opts.timeoutMs);
  try {
    return await opts.call(link.signal);
  } catch (err) {
    if (opts.signal.aborted) throw new ProviderAbortedError("the request was stopped");
    if (timedOut) throw new ProviderError("PROVIDER_TIMEOUT", `the provider did not answer within ${opts.timeoutMs} ms`);
    throw err instanceof ProviderError ? err : opts.classify(err, false);
  } finally {
    clearTimeout(timer);
    link.detach();
  }
}

/**
 * A signal that aborts, with the same reason, once any of `sources` does (or
 * `abort` is called): the one the SDK listens on. Not AbortSignal.any(): Node holds such a signal while
 * it has listeners until it aborts, so a finished request had to abort it, and
 * each of those aborts made two DOMExceptions (ours and the SDK's own
 * controller.abort()), each an entry in Node's process-wide DOMException
 * WeakMap, whose table V8 does not shrink when GC clears dead entries (the
 * session heap bench saw it grow with the replies served). `detach` once the
 * request is over: then nothing holds the signal.
 */
export function linkedSignal(sources: readonly AbortSignal[]): { signal: AbortSignal; abort(reason?: unknown): void; detach(): void } {
  const link = new AbortController();
  const forwards = sources.map((source) => [source, () => link.abort(source.reason)] as const);
  for (const [source, forward] of forwards) {
    if (source.aborted) {
      link.abort(source.reason);
      break;
    }
    source.addEventListener("abort", forward, { once: true });
  }
  return {
    signal: link.signal,
    /** Aborts the linked signal itself (a timer, a failed store). */
    abort: (reason?: unknown) => link.abort(reason),
    detach: () => {
      for (const [source, forward] of forwards) source.removeEventListener("abort", forward);
    },
  };
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
