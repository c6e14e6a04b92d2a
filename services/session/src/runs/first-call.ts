import type { ModelChunk, Provider } from "../providers/provider.js";

/**
 * The provider for a run whose user message is still being stored: its first
 * stream call sends the request at once, but hands on its first chunk only
 * once `persisted` resolved, so the message's event (sent after it is stored)
 * comes before any delta. When `persisted` rejects, the call is aborted and
 * the loop gets that error. `answered` runs once the first call has answered
 * (first chunk or failure): work that should not compete with the request
 * (the session description) starts there. Later calls pass straight through.
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
      const stop = new AbortController();
      const inner = provider.stream({ ...req, signal: AbortSignal.any([req.signal, stop.signal]) })[Symbol.asyncIterator]();
      // Starts the request now (an async generator runs to its first await).
      const firstChunk = inner.next();
      firstChunk.then(answered, answered);
      let handed = false;
      const iterator: AsyncIterator<ModelChunk> = {
        next() {
          if (handed) return inner.next();
          handed = true;
          return persisted.then(
            () => firstChunk,
            async (err: unknown) => {
              stop.abort(err);
              await firstChunk.catch(() => undefined);
              await inner.return?.();
              throw err;
            },
          );
        },
        return: (value?: unknown) => inner.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
      };
      return { [Symbol.asyncIterator]: () => iterator };
    },
  };
}
