import { iterateBatches, WAITING, type BatchSource, type BatchWaiter } from "./batch-source.js";
import { ResourceExhaustedError } from "./errors.js";

/** Raised to a subscriber that fell further behind than its queue allows. */
export class SubscriberOverflowError extends ResourceExhaustedError {}

/**
 * Fan-out of live events to any number of followers. Each subscriber has its
 * own bounded queue: a slow follower is cut off with a clear error instead of
 * growing memory without bound, and publishing never waits for anyone.
 */
export class Broadcaster<T> {
  private readonly subscribers = new Set<Subscription<T>>();

  get size(): number {
    return this.subscribers.size;
  }

  publish(event: T): void {
    for (const s of this.subscribers) s.push(event);
  }

  /** Ends every subscription (its reader gets what was queued, then the end). */
  close(): void {
    for (const s of this.subscribers) s.end();
  }

  /**
   * Follows events published from now on until a signal aborts, close(), or
   * the reader closes it. `maxQueued` bounds the events waiting for this
   * subscriber. Read it in batches (nextBatch) or as an async iterable.
   */
  subscribe(signals: AbortSignal[], maxQueued = 1024, overflowMessage = "subscriber fell behind"): Subscription<T> {
    return new Subscription(this.subscribers, signals, maxQueued, overflowMessage);
  }
}

/**
 * One follower's queue. It holds one abort listener per signal for its whole
 * life (not one per wait), and leaves the broadcaster as soon as it ends.
 */
export class Subscription<T> implements BatchSource<T>, AsyncIterable<T> {
  private queue: T[] = [];
  /** The reader waiting for the next batch (a promise's resolvers, or a nextBatchOr waiter). */
  private waiter: BatchWaiter<T> | undefined;
  /** The waiter came through nextBatchOr: an event is told to it at once, from its push. */
  private tellAtOnce = false;
  /** A flush is queued: a promise's waiter is told in a microtask, with every event pushed in the same synchronous run as one batch; so is an end. */
  private flushQueued = false;
  /** No more events will be queued: broadcaster closed, a signal aborted, or the reader closed it. */
  private ended = false;
  private overflowed = false;
  private readonly onAbort = () => this.end();
  private readonly flush = () => {
    this.flushQueued = false;
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.overflowed) {
      this.waiter = undefined;
      return waiter.fail(new SubscriberOverflowError(this.overflowMessage));
    }
    // Nothing to tell yet (the queue was taken meanwhile): the reader keeps waiting.
    if (this.queue.length === 0 && !this.ended) return;
    this.waiter = undefined;
    const batch = this.queue.length > 0 ? this.queue : undefined;
    if (batch) this.queue = [];
    // Told directly, not through a promise that layers over this source would each chain on (see nextBatchOr).
    waiter.batch(batch);
  };

  constructor(
    private readonly subscribers: Set<Subscription<T>>,
    private readonly signals: AbortSignal[],
    private readonly maxQueued: number,
    private readonly overflowMessage: string,
  ) {
    subscribers.add(this);
    for (const s of signals) s.addEventListener("abort", this.onAbort, { once: true });
    if (signals.some((s) => s.aborted)) this.end();
  }

  /** @internal the broadcaster queues an event. */
  push(event: T): void {
    if (this.ended) return;
    if (this.queue.length >= this.maxQueued) {
      this.overflowed = true;
      this.queue = [];
      this.end();
      return;
    }
    // A nextBatchOr reader (a reply stream's writer) gets the event inside this push, on its own (it waits only on an
    // empty queue): the write happens in the publisher's own turn, with no microtask per event (with the provider's
    // reads pushed too, a streamed delta goes from the provider's socket to the client's in one synchronous run:
    // -17 % CPU per event in the paced bench).
    if (this.tellAtOnce && this.waiter && !this.flushQueued) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.batch([event]);
      return;
    }
    this.queue.push(event);
    this.wakeReader();
  }

  /** Everything queued, in order; waits when nothing is; undefined once ended and empty. Throws SubscriberOverflowError when cut off. */
  nextBatch(): T[] | undefined | Promise<T[] | undefined> {
    const ready = this.ready();
    if (ready !== WAITING) return ready;
    this.tellAtOnce = false;
    return new Promise<T[] | undefined>((resolve, reject) => (this.waiter = { batch: resolve as (b: readonly T[] | undefined) => void, fail: reject }));
  }

  /**
   * nextBatch without a promise: `waiter` is told the next event at once, from
   * inside its push (events pushed while it is not waiting come together at
   * its next read); the end or an overflow from a microtask, after the abort
   * listeners of the signal that ended it have run.
   */
  nextBatchOr(waiter: BatchWaiter<T>): T[] | undefined | typeof WAITING {
    const ready = this.ready();
    if (ready === WAITING) {
      this.waiter = waiter;
      this.tellAtOnce = true;
    }
    return ready;
  }

  close(): void {
    this.queue = [];
    this.end();
  }

  /** @internal stops queueing, forgets the listeners and the broadcaster, wakes a waiting reader. */
  end(): void {
    if (!this.ended) {
      this.ended = true;
      this.subscribers.delete(this);
      for (const s of this.signals) s.removeEventListener("abort", this.onAbort);
    }
    this.wakeReader();
  }

  private ready(): T[] | undefined | typeof WAITING {
    if (this.overflowed) throw new SubscriberOverflowError(this.overflowMessage);
    if (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.ended ? undefined : WAITING;
  }

  private wakeReader(): void {
    if (this.waiter && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<T> {
    return iterateBatches(this);
  }
}
