import { afterQueuedWrites } from "@skein/runtime";
import { eachBatch, type ModelChunk, type ModelStream, type Provider } from "../providers/provider.js";
import { linkedSignal } from "../providers/guarded-stream.js";

/**
 * The provider for a run whose user message is still being stored.
 *
 * Its first stream call sends the request two turns of the event loop later
 * (afterQueuedWrites twice): SQLite commits the writes asked for in a turn
 * in the next one, and the message's event written then leaves the socket
 * in the turn after that (HTTP/2 flushes from an immediate of its own), so
 * the store and the first event go out first and the request building no
 * longer sits in front of them (one turn: the first event 1.3 ms later at
 * p50 on an idle service). With an asynchronous store (PostgreSQL) the
 * request still goes out while the message is being stored.
 *
 * The first chunk is handed on only once `persisted` resolved, so the
 * message's event (sent after it is stored) comes before any delta. When
 * `persisted` rejects, the call is aborted (or, when the store failed before
 * the request went out, never sent) and the loop gets that error.
 * `answered` runs once the first call has answered (first chunk or failure):
 * work that should not compete with the request (the session description)
 * starts there. Later calls pass straight through.
 */
export function startedBeforePersisted(provider: Provider, persisted: Promise<void>, answered: () => void): Provider {
  let first = true;
  return {
    name: provider.name,
    model: provider.model,
    complete: (req) => provider.complete(req),
    stream(req) {
      if (!first) return provider.stream(req);
      first = false;
      // Not AbortSignal.any (costly per reply, see linkedSignal); not detached: it listens on the run's own signal, which goes with the run.
      const stop = linkedSignal([req.signal]);
      let storeFailed = false;
      let closed = false;
      persisted.catch(() => (storeFailed = true));
      let innerStream: ModelStream | undefined;
      let inner: AsyncIterator<readonly ModelChunk[]> | undefined;
      const firstChunk = afterQueuedWrites().then(afterQueuedWrites).then(() => {
        if (storeFailed || closed) return undefined;
        innerStream = provider.stream({ ...req, signal: stop.signal });
        inner = innerStream[Symbol.asyncIterator]();
        return inner.next();
      });
      firstChunk.then(answered, answered);
      let handed = false;
      const iterator: AsyncIterator<readonly ModelChunk[]> = {
        next() {
          if (handed) return inner!.next();
          handed = true;
          return persisted.then(
            // Not started (undefined) only when the store failed or the loop closed the stream first.
            () => firstChunk.then((r): IteratorResult<readonly ModelChunk[]> => r ?? { done: true, value: undefined }),
            async (err: unknown) => {
              stop.abort(err);
              await firstChunk.catch(() => undefined);
              await inner?.return?.();
              throw err;
            },
          );
        },
        return: (value?: unknown) => {
          closed = true;
          return inner?.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
        },
      };
      return {
        [Symbol.asyncIterator]: () => iterator,
        // The first batch as next() hands it; the rest straight from the provider's stream (pushed, when it can).
        forEachBatch: async (onBatch) => {
          const first = await iterator.next();
          if (first.done) return;
          try {
            onBatch(first.value);
          } catch (err) {
            await iterator.return!();
            throw err;
          }
          await eachBatch(innerStream!.forEachBatch ? innerStream! : { [Symbol.asyncIterator]: () => inner! }, onBatch);
        },
      };
    },
  };
}
