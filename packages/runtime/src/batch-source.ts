/**
 * A stream's items handed out in batches: everything that is ready at once.
 * A writer takes a batch synchronously (one resumption per batch, not one per
 * item through layers of async iteration), which is what a reply stream needs
 * when a provider read carries hundreds of text deltas.
 */
export interface BatchSource<T> {
  /**
   * The items ready now, or a promise of the next ones when none are;
   * undefined once the source has ended.
   */
  nextBatch(): readonly T[] | undefined | Promise<readonly T[] | undefined>;
  /** The reader stops (end, error or cancel): frees what the source holds and ends a pending wait. Idempotent. */
  close(): void;
  /**
   * Optional, for the hot path of a reply stream: nextBatch without a
   * promise. When nothing is ready, `waiter` is kept and WAITING returned;
   * the waiter is then told once, never from inside this call. A source
   * without it is read through its promise (see nextBatchOr below).
   */
  nextBatchOr?(waiter: BatchWaiter<T>): readonly T[] | undefined | typeof WAITING;
}

/** A reader waiting on a batch source (see BatchSource.nextBatchOr): told the next batch (undefined: ended) or the failure, once. Its methods must not throw. */
export interface BatchWaiter<T> {
  batch(batch: readonly T[] | undefined): void;
  fail(err: unknown): void;
}

/** Returned by nextBatchOr when the waiter was kept. */
export const WAITING: unique symbol = Symbol("skein.batchSource.waiting");

/**
 * The next batch of `source` as nextBatchOr hands it: at once when it is
 * ready, else WAITING and `waiter` told later. Sources that hand only
 * promises are waited on through theirs.
 */
export function nextBatchOr<T>(source: BatchSource<T>, waiter: BatchWaiter<T>): readonly T[] | undefined | typeof WAITING {
  if (source.nextBatchOr) return source.nextBatchOr(waiter);
  const next = source.nextBatch();
  if (!(next instanceof Promise)) return next;
  next.then(
    (batch) => waiter.batch(batch),
    (err: unknown) => waiter.fail(err),
  );
  return WAITING;
}

/**
 * A layer over a source that changes each batch (`step`, which may throw):
 * the one waiter it hands to its source passes the changed batch on to
 * whoever waits on the layer, so a wake-up goes through every layer in one
 * call instead of a promise and a microtask per layer.
 */
export function steppedWaits<T, U>(step: (batch: readonly T[] | undefined) => readonly U[] | undefined): {
  up: BatchWaiter<T>;
  wait(source: BatchSource<T>, waiter: BatchWaiter<U>): readonly U[] | undefined | typeof WAITING;
} {
  let down: BatchWaiter<U> | undefined;
  const take = () => {
    const d = down!;
    down = undefined;
    return d;
  };
  const up: BatchWaiter<T> = {
    batch: (batch) => {
      const d = take();
      let out: readonly U[] | undefined;
      try {
        out = step(batch);
      } catch (err) {
        d.fail(err);
        return;
      }
      d.batch(out);
    },
    fail: (err) => take().fail(err),
  };
  return {
    up,
    wait: (source, waiter) => {
      down = waiter;
      const next = nextBatchOr(source, up);
      if (next === WAITING) return WAITING;
      down = undefined;
      return step(next);
    },
  };
}

export function isBatchSource(x: unknown): x is BatchSource<unknown> {
  return typeof x === "object" && x !== null && typeof (x as BatchSource<unknown>).nextBatch === "function";
}

/** An async iterable as a batch source of one item per batch (for sources that only iterate). */
export function batchesOf<T>(iterable: AsyncIterable<T>): BatchSource<T> {
  const it = iterable[Symbol.asyncIterator]();
  let done = false;
  return {
    nextBatch: () =>
      it.next().then((r) => {
        if (!r.done) return [r.value];
        done = true;
        return undefined;
      }),
    close: () => {
      if (done) return;
      done = true;
      // Not awaited: a generator still waiting inside next() only returns once that wait ends.
      it.return?.()?.catch(() => undefined);
    },
  };
}

/** A batch source that can also be read one item at a time. */
export type Feed<T> = BatchSource<T> & AsyncIterable<T>;

/** `source` with an async iterator over its items (see iterateBatches). */
export function feedOf<T>(source: BatchSource<T>): Feed<T> {
  const feed: Feed<T> = { nextBatch: () => source.nextBatch(), close: () => source.close(), [Symbol.asyncIterator]: () => iterateBatches(source) };
  if (source.nextBatchOr) feed.nextBatchOr = (waiter) => source.nextBatchOr!(waiter);
  return feed;
}

/** A batch source read one item at a time (for readers that iterate); closed when the loop ends. */
export async function* iterateBatches<T>(source: BatchSource<T>): AsyncGenerator<T> {
  try {
    for (;;) {
      const batch = await source.nextBatch();
      if (batch === undefined) return;
      for (const item of batch) yield item;
    }
  } finally {
    source.close();
  }
}

/** Each item of `source` converted by `fn`, batch by batch. */
export function mapBatches<T, U>(source: BatchSource<T>, fn: (item: T) => U): BatchSource<U> {
  const map = (batch: readonly T[] | undefined) => batch?.map(fn);
  const waits = steppedWaits(map);
  return {
    nextBatch: () => {
      const next = source.nextBatch();
      return next instanceof Promise ? next.then(map) : map(next);
    },
    nextBatchOr: (waiter) => waits.wait(source, waiter),
    close: () => source.close(),
  };
}
