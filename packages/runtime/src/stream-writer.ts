import { once } from "node:events";
import type { Writable } from "node:stream";

/**
 * Writes one message, waiting for `drain` when the transport buffer is full.
 * The wait is bound to the call's signal: grpc-js never emits `drain` after a
 * client cancels, so an unbound wait would hang and keep its listener forever.
 * Returns false when the signal ended the wait.
 */
export async function writeWithBackpressure(stream: Writable, message: unknown, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (stream.write(message)) return true;
  try {
    await once(stream, "drain", { signal });
    return true;
  } catch (err) {
    if (signal.aborted) return false;
    throw err;
  }
}

/**
 * Pumps an async iterable into a writable stream with backpressure, stopping
 * (and closing the iterator, so its finally blocks run) when the signal aborts.
 * Returns true when the source was exhausted, false when the signal stopped it.
 * One abort listener serves the whole call (not one per message: adding and
 * removing it per message showed in the reply profile).
 */
export async function pump(source: AsyncIterable<unknown>, stream: Writable, signal: AbortSignal, onWrite?: () => void): Promise<boolean> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  /** Ends the current wait for the next item; set per wait. */
  let stopWaiting: (() => void) | undefined;
  const onAbort = () => stopWaiting?.();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      if (signal.aborted) return false;
      const next = await new Promise<IteratorResult<unknown> | undefined>((resolve, reject) => {
        stopWaiting = () => resolve(undefined);
        it.next().then(resolve, reject);
      });
      stopWaiting = undefined;
      if (next === undefined) return false;
      if (next.done) {
        finished = true;
        return true;
      }
      if (!(await writeWithBackpressure(stream, next.value, signal))) return false;
      onWrite?.();
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // Not awaited: a generator still waiting inside next() only returns once
    // that wait ends, and the handler's own signal handling ends it.
    if (!finished) it.return?.()?.catch(() => undefined);
  }
}
