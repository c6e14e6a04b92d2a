import { once } from "node:events";
import type { Writable } from "node:stream";
import { batchesOf, nextBatchOr, WAITING, type BatchSource, type BatchWaiter } from "./batch-source.js";

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
 *
 * Driven by callbacks, not an async loop: with a model streaming one delta
 * per read, every event is its own wait on the source, and an awaited wait
 * that an abort must also be able to end cost a promise, its executor's
 * closures and the function's resumption per event (the 200-stream paced
 * profile). Here one waiter serves every wait of the call (see
 * BatchSource.nextBatchOr: a source that has it tells the waiter directly,
 * others through a `then` on their promise); an abort settles the pump at
 * once, and a batch that comes later is dropped. One abort listener serves
 * the whole call (adding and removing one per message showed in the reply
 * profile), a drain listener only a wait for drain, and the abort state is
 * a local flag (`signal.aborted` is a getter with brand checks, read twice
 * per message before).
 */
export function pumpBatches(source: BatchSource<unknown>, stream: Writable, signal: AbortSignal, onWrite?: () => void): Promise<boolean> {
  if (signal.aborted) {
    source.close();
    return Promise.resolve(false);
  }
  return new Promise<boolean>((resolve, reject) => {
    let settled = false;
    /** The batch being written and the index of its next message (kept across a wait for drain). */
    let batch: readonly unknown[] = [];
    let at = 0;
    let waitingForDrain = false;
    const settle = (ended: boolean, failed = false, err?: unknown) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (waitingForDrain) stream.off("drain", onDrain);
      try {
        source.close();
      } catch (closeErr) {
        if (!failed) {
          failed = true;
          err = closeErr;
        }
      }
      if (failed) reject(err);
      else resolve(ended);
    };
    const onAbort = () => settle(false);
    const fail = (err: unknown) => settle(false, true, err);
    const onBatch = (next: readonly unknown[] | undefined) => {
      if (settled) return;
      if (next === undefined) return settle(true);
      batch = next;
      at = 0;
      run();
    };
    const waiter: BatchWaiter<unknown> = { batch: onBatch, fail };
    const onDrain = () => {
      waitingForDrain = false;
      if (!settled) run();
    };
    /** Writes what is left of the batch, then reads on until a wait (source or drain) or the end. */
    const run = () => {
      try {
        for (;;) {
          while (at < batch.length) {
            const accepted = stream.write(batch[at++]);
            // A write can end the call (grpc-js refusing a message, a cancel): the abort settled the pump.
            if (settled) return;
            onWrite?.();
            if (!accepted) {
              waitingForDrain = true;
              stream.once("drain", onDrain);
              return;
            }
          }
          const next = nextBatchOr(source, waiter);
          if (next === WAITING) return;
          if (next === undefined) return settle(true);
          batch = next;
          at = 0;
        }
      } catch (err) {
        fail(err);
      }
    };
    signal.addEventListener("abort", onAbort, { once: true });
    run();
  });
}
