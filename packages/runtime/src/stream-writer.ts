import { once } from "node:events";
import type { Writable } from "node:stream";
import { batchesOf, type BatchSource } from "./batch-source.js";

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
 * Pumps an async iterable into a writable stream with backpressure (see
 * pumpBatches), one item at a time.
 */
export function pump(source: AsyncIterable<unknown>, stream: Writable, signal: AbortSignal, onWrite?: () => void): Promise<boolean> {
  return pumpBatches(batchesOf(source), stream, signal, onWrite);
}

/**
 * Writes a batch source into a writable stream: each batch synchronously
 * while `write()` accepts, waiting for `drain` only when the transport is
 * full. Stops when the signal aborts, and always closes the source.
 * Returns true when the source ended, false when the signal stopped it.
 * One abort listener serves the whole call, for the waits on the source and
 * on `drain` alike (adding and removing one per message showed in the reply
 * profile).
 */
export async function pumpBatches(source: BatchSource<unknown>, stream: Writable, signal: AbortSignal, onWrite?: () => void): Promise<boolean> {
  /** Ends the current wait (for the source or for drain); set per wait. */
  let stopWaiting: (() => void) | undefined;
  const onAbort = () => stopWaiting?.();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      if (signal.aborted) return false;
      let batch = source.nextBatch();
      if (batch instanceof Promise) {
        const pending = batch;
        batch = await new Promise<readonly unknown[] | undefined>((resolve, reject) => {
          stopWaiting = () => resolve(undefined);
          pending.then(resolve, reject);
        });
        stopWaiting = undefined;
        if (signal.aborted) return false;
      }
      if (batch === undefined) return true;
      for (const message of batch) {
        if (signal.aborted) return false;
        if (!stream.write(message)) {
          await new Promise<void>((resolve) => {
            const done = () => {
              stream.off("drain", done);
              resolve();
            };
            stopWaiting = done;
            stream.on("drain", done);
          });
          stopWaiting = undefined;
          if (signal.aborted) return false;
        }
        onWrite?.();
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    source.close();
  }
}
