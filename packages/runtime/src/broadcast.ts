import { ResourceExhaustedError } from "./errors.js";

/** Raised to a subscriber that fell further behind than its queue allows. */
export class SubscriberOverflowError extends ResourceExhaustedError {}

/**
 * Fan-out of live events to any number of followers. Each subscriber has its
 * own bounded queue: a slow follower is cut off with a clear error instead of
 * growing memory without bound, and publishing never waits for anyone.
 */
export class Broadcaster<T> {
  private readonly subscribers = new Set<Subscriber<T>>();

  get size(): number {
    return this.subscribers.size;
  }

  publish(event: T): void {
    for (const s of this.subscribers) s.push(event);
  }

  /** Ends every subscription (their iterators return normally). */
  close(): void {
    for (const s of this.subscribers) s.close();
  }

  /**
   * Follows events published from now on until a signal aborts or close().
   * `maxQueued` bounds the events waiting for this subscriber.
   */
  subscribe(signals: AbortSignal[], maxQueued = 1024, overflowMessage = "subscriber fell behind"): AsyncIterable<T> {
    const sub = new Subscriber<T>(maxQueued, overflowMessage);
    this.subscribers.add(sub);
    const subscribers = this.subscribers;
    return {
      async *[Symbol.asyncIterator]() {
        try {
          yield* sub.drain(signals);
        } finally {
          subscribers.delete(sub);
        }
      },
    };
  }
}

class Subscriber<T> {
  private queue: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private overflowed = false;

  constructor(
    private readonly maxQueued: number,
    private readonly overflowMessage: string,
  ) {}

  push(event: T): void {
    if (this.closed || this.overflowed) return;
    if (this.queue.length >= this.maxQueued) {
      this.overflowed = true;
      this.queue = [];
    } else this.queue.push(event);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *drain(signals: AbortSignal[]): AsyncGenerator<T> {
    // One abort listener per subscription, not one per wait (a wait per event when events trickle in).
    const onAbort = () => this.wake?.();
    for (const s of signals) s.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (this.overflowed) throw new SubscriberOverflowError(this.overflowMessage);
        const batch = this.queue;
        this.queue = [];
        for (const event of batch) yield event;
        if (batch.length > 0) continue;
        if (this.closed || signals.some((s) => s.aborted)) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      for (const s of signals) s.removeEventListener("abort", onAbort);
    }
  }
}
