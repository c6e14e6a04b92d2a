import { finished, type Readable } from "node:stream";
import { ProviderAbortedError, ProviderError } from "./provider.js";
import type { NodeBody } from "./direct-first-attempt.js";
import { linkedSignal, type GuardedStreamOptions } from "./guarded-stream.js";
import { nodeBodyOf } from "./node-fetch.js";
import { SseDecoder, type SseMessage } from "./sse-decoder.js";

/** Reads of a Node body whose items were not taken yet, past which the body is paused (backpressure). */
const MAX_HELD_READS = 64;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * Reads a provider's SSE response body under an idle watchdog and turns every
 * way it can end into either normal completion, ProviderAbortedError (the run
 * was stopped) or a classified ProviderError. The watchdog is re-armed by
 * every chunk of bytes, not by parsed events: a provider slowly sending one
 * huge event is alive, not stalled. The body is parsed by skein's SseDecoder,
 * linear in the bytes received however long a line is.
 *
 * `handle` turns each SSE event into items (pushed to `out`); the items of
 * every read that came since the reader last took some come out as one batch,
 * and reads that made none are skipped. When an event fails, the items before
 * it still come out first, then its error, unclassified. `last` gives the
 * final batch once the body ended (it may throw, e.g. for a stream cut before
 * its finish).
 *
 * Not an async generator: a Node body (nodeFetch's, DirectFirstAttempt's) is
 * decoded and converted in its own 'data' event, which settles the reader's
 * waiting `next()` directly: one promise per read from the network to the
 * agent loop. The generator this replaces cost a promise for the body read,
 * a resumption, and the generator's own promises per read, which a model
 * streaming one delta per read pays per delta of every reply (the paced
 * profile). Read through forEachBatch, not even that: the loop's handling of
 * a read runs inside the read's data event. A web body (a Response not made
 * by nodeFetch) is read on demand.
 */
export function guardedChunks<T>(opts: GuardedStreamOptions, handle: (sse: SseMessage, out: T[]) => void, last: () => T[]): GuardedChunks<T> {
  return new GuardedChunks(opts, handle, last);
}

export class GuardedChunks<T> implements AsyncIterableIterator<T[]> {
  // The request's signal: the run's, and aborted by the idle timer itself (one AbortController per
  // request, not one more for the timer to link: each showed in the paced profile).
  private readonly link: ReturnType<typeof linkedSignal>;
  private readonly decoder = new SseDecoder();
  private started = false;
  private opened = false;
  private idle = false;
  private lastActivity = 0;
  private timer: NodeJS.Timeout | undefined;
  private body: Readable | undefined;
  private unwatch: (() => void) | undefined;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  /** A web body read is in flight. */
  private reading = false;
  /** The body was read to its end (nothing to free). */
  private drained = false;
  /** Items not taken yet, and how many reads made them. */
  private ready: T[] = [];
  private heldReads = 0;
  /** How the stream ended, once it has (after `ready` is taken): `failed` then `error` is thrown. */
  private ended = false;
  private failed = false;
  private error: unknown;
  /** Everything handed out, or the reader returned: cleaned up. */
  private closed = false;
  private waiter: { resolve(r: IteratorResult<T[]>): void; reject(err: unknown): void } | undefined;
  /** The reader of forEachBatch, told each batch from the read that made it. */
  private sink: { onBatch(items: T[]): void; resolve(): void; reject(err: unknown): void } | undefined;

  constructor(
    private readonly opts: GuardedStreamOptions,
    private readonly handle: (sse: SseMessage, out: T[]) => void,
    private readonly last: () => T[],
  ) {
    this.link = linkedSignal([opts.signal]);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T[]>> {
    if (this.waiter || this.sink) return Promise.reject(new Error("guardedChunks: next() while a read is pending"));
    if (!this.started) this.start();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.wake();
    });
  }

  /**
   * The batches from here on handed to `onBatch` as they come, from the body's
   * own data event: no promise per read. Resolves at the end, rejects as
   * next() would throw; a throw from `onBatch` ends the stream (its body freed)
   * and rejects with it.
   */
  forEachBatch(onBatch: (items: T[]) => void): Promise<void> {
    if (this.waiter || this.sink) return Promise.reject(new Error("guardedChunks: forEachBatch() while a read is pending"));
    if (!this.started) this.start();
    return new Promise<void>((resolve, reject) => {
      this.sink = { onBatch, resolve, reject };
      this.toSink();
    });
  }

  /** The reader stops early (a break, a failure of its own): the request and its connection are freed. */
  return(): Promise<IteratorResult<T[]>> {
    if (!this.opened && this.started && !this.ended) this.link.abort();
    this.close();
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve(DONE);
    return Promise.resolve(DONE);
  }

  /** What next() answers now: a batch, the end, or a throw; undefined while there is nothing yet. */
  private settled(): IteratorResult<T[]> | undefined {
    if (this.closed) return DONE;
    if (this.ready.length > 0) {
      const batch = this.ready;
      this.ready = [];
      this.heldReads = 0;
      if (this.body?.isPaused() && !this.ended) this.body.resume();
      return { done: false, value: batch };
    }
    if (!this.ended) {
      this.readWeb();
      return undefined;
    }
    this.close();
    if (this.failed) throw this.error;
    return DONE;
  }

  /** Something came (items, the end): a waiting next() or forEachBatch's reader gets it. */
  private wake(): void {
    if (this.sink) return this.toSink();
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = undefined;
    let result: IteratorResult<T[]> | undefined;
    try {
      result = this.settled();
    } catch (err) {
      waiter.reject(err);
      return;
    }
    if (result) waiter.resolve(result);
    else this.waiter = waiter;
  }

  /** Hands forEachBatch's reader what is ready, until nothing is (a web body's next read is then under way) or the stream ended. */
  private toSink(): void {
    const sink = this.sink!;
    for (;;) {
      let result: IteratorResult<T[]> | undefined;
      try {
        result = this.settled();
      } catch (err) {
        this.sink = undefined;
        sink.reject(err);
        return;
      }
      if (!result) return;
      if (result.done) {
        this.sink = undefined;
        sink.resolve();
        return;
      }
      try {
        sink.onBatch(result.value);
      } catch (err) {
        this.sink = undefined;
        this.close();
        sink.reject(err);
        return;
      }
    }
  }

  private start(): void {
    this.started = true;
    this.lastActivity = performance.now();
    // One timer for the whole stream: a read only notes the time (re-arming a timer per read showed
    // in the reply profile); when the timer fires early because bytes came since, it waits the rest.
    this.timer = setTimeout(this.check, this.opts.idleTimeoutMs);
    let opening: Promise<Response | NodeBody>;
    try {
      opening = this.opts.open(this.link.signal);
    } catch (err) {
      opening = Promise.reject(err);
    }
    opening.then(
      (res) => this.onOpen(res),
      (err: unknown) => this.fail(err),
    );
  }

  private readonly check = (): void => {
    const silentFor = performance.now() - this.lastActivity;
    if (silentFor >= this.opts.idleTimeoutMs) {
      this.idle = true;
      this.link.abort();
    } else this.timer = setTimeout(this.check, this.opts.idleTimeoutMs - silentFor);
  };

  private onOpen(res: Response | NodeBody): void {
    if (this.closed) {
      // The reader left while the request was being sent: free what came.
      if ("nodeBody" in res) res.nodeBody.destroy();
      else res.body?.cancel().catch(() => undefined);
      return;
    }
    this.opened = true;
    this.lastActivity = performance.now();
    let body: Readable | undefined;
    if ("nodeBody" in res) body = res.nodeBody;
    else {
      if (!res.body) return this.fail(new ProviderError("PROVIDER_MALFORMED_STREAM", "the provider answered without a response body"));
      // nodeFetch's responses are read as a Node stream: far less work per network read than fetch's web stream.
      body = nodeBodyOf(res);
      if (!body) {
        this.reader = res.body.getReader();
        this.wake();
        return;
      }
    }
    this.body = body;
    body.on("data", this.onData);
    // An end without 'end' (a cut connection, a destroy) is an error here, as it is to the stream's async iterator.
    this.unwatch = finished(body, this.onBodyEnd);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.ended) return;
    this.lastActivity = performance.now();
    if (this.take(this.decoder.push(chunk)) && ++this.heldReads >= MAX_HELD_READS) this.body?.pause();
    this.wake();
  };

  /** A web body is read when the reader waits (one read at a time), as its own reader would. */
  private readWeb(): void {
    if (!this.reader || this.reading || this.ended) return;
    this.reading = true;
    this.reader.read().then(
      ({ done, value }) => {
        this.reading = false;
        if (done) return this.onBodyEnd(undefined);
        if (this.ended) return;
        this.lastActivity = performance.now();
        this.take(this.decoder.push(value));
        // A read that made no items: the waiting reader (if any) reads on.
        this.wake();
      },
      (err: unknown) => {
        this.reading = false;
        this.fail(err);
      },
    );
  }

  /** Converts `events` into `ready`; an event that fails ends the stream with its error, after the items before it. Whether items came. */
  private take(events: SseMessage[]): boolean {
    if (events.length === 0) return false;
    const before = this.ready.length;
    try {
      for (const sse of events) this.handle(sse, this.ready);
    } catch (err) {
      this.end(err);
    }
    return this.ready.length > before;
  }

  private readonly onBodyEnd = (err?: Error | null): void => {
    if (this.ended) return;
    if (err) return this.fail(err);
    this.drained = true;
    this.take(this.decoder.end());
    if (!this.ended) {
      const why = this.stopped();
      if (why) this.end(why);
      else {
        try {
          this.ready.push(...this.last());
          this.end();
        } catch (lastErr) {
          this.end(lastErr);
        }
      }
    }
    this.wake();
  };

  /** The request or the body failed: the run's stop, the idle watchdog, or the provider's failure, classified. */
  private fail(err: unknown): void {
    if (this.ended) return;
    this.end(this.stopped() ?? (err instanceof ProviderError ? err : this.opts.classify(err, this.opened)));
    this.wake();
  }

  private stopped(): ProviderError | ProviderAbortedError | undefined {
    if (this.opts.signal.aborted) return new ProviderAbortedError("the run was stopped");
    if (this.idle) return new ProviderError("PROVIDER_TIMEOUT", `the provider sent nothing for ${this.opts.idleTimeoutMs} ms`);
    return undefined;
  }

  /** No more items will come; with an error, it is thrown once `ready` is taken. The body is let go. */
  private end(...error: [] | [unknown]): void {
    if (this.ended) return;
    this.ended = true;
    if (error.length > 0) {
      this.failed = true;
      this.error = error[0];
    }
    this.release();
  }

  /** Stops listening to the body; one left unread (an error, the reader gone) is destroyed, freeing the connection. */
  private release(): void {
    clearTimeout(this.timer);
    if (this.body) {
      this.body.off("data", this.onData);
      this.unwatch?.();
      if (!this.drained) this.body.destroy();
      this.body = undefined;
    }
    if (this.reader && !this.drained) this.reader.cancel().catch(() => undefined);
    this.reader = undefined;
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    this.ready = [];
    this.release();
    this.link.detach();
  }
}
