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
  return { nextBatch: () => source.nextBatch(), close: () => source.close(), [Symbol.asyncIterator]: () => iterateBatches(source) };
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
  return {
    nextBatch: () => {
      const next = source.nextBatch();
      return next instanceof Promise ? next.then(map) : map(next);
    },
    close: () => source.close(),
  };
}
