import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { mapBatches, nextBatchOr, steppedWaits, WAITING, type BatchSource, type BatchWaiter } from "../src/batch-source.js";
import { Broadcaster, SubscriberOverflowError } from "../src/broadcast.js";
import { pumpBatches } from "../src/stream-writer.js";

/** A waiter that records what it is told, and a promise of the first thing. */
function recorder<T>() {
  const told: Array<{ batch: readonly T[] | undefined } | { err: unknown }> = [];
  let settle!: () => void;
  const first = new Promise<void>((r) => (settle = r));
  const waiter: BatchWaiter<T> = {
    batch: (batch) => {
      told.push({ batch });
      settle();
    },
    fail: (err) => {
      told.push({ err });
      settle();
    },
  };
  return { told, first, waiter };
}

describe("nextBatchOr: a wait without a promise", () => {
  it("a subscription tells a waiting reader each event from inside its push; what comes while it is not waiting comes at its next read, as one batch", async () => {
    const b = new Broadcaster<number>();
    const sub = b.subscribe([]);
    const { told, waiter } = recorder<number>();
    expect(sub.nextBatchOr(waiter)).toBe(WAITING);
    b.publish(1);
    expect(told).toEqual([{ batch: [1] }]);
    b.publish(2);
    b.publish(3);
    expect(told).toHaveLength(1);
    expect(sub.nextBatchOr(waiter)).toEqual([2, 3]);
    // A promise's reader still gets a synchronous run of events as one batch.
    const next = sub.nextBatch();
    b.publish(4);
    b.publish(5);
    expect(await next).toEqual([4, 5]);
    sub.close();
  });

  it("tells a waiting reader the end (close, abort) after the abort's listeners, and a reader cut off its overflow", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const ended = recorder<number>();
    expect(b.subscribe([ac.signal]).nextBatchOr(ended.waiter)).toBe(WAITING);
    ac.abort();
    expect(ended.told).toEqual([]);
    await ended.first;
    expect(ended.told).toEqual([{ batch: undefined }]);

    const slow = b.subscribe([], 2);
    const cut = recorder<number>();
    expect(slow.nextBatchOr(cut.waiter)).toBe(WAITING);
    // Told 1 at once; 2 and 3 fill its queue of 2 while it does not read; 4 cuts it off.
    [1, 2, 3, 4].forEach((n) => b.publish(n));
    expect(cut.told).toEqual([{ batch: [1] }]);
    expect(() => slow.nextBatchOr(cut.waiter)).toThrow(SubscriberOverflowError);
    const waiting = b.subscribe([], 2).nextBatch();
    [1, 2, 3].forEach((n) => b.publish(n));
    await expect(waiting).rejects.toBeInstanceOf(SubscriberOverflowError);
  });

  it("layers pass an event on in one call, changed by each layer; a layer's failure goes to the waiter", async () => {
    const b = new Broadcaster<number>();
    const sub = b.subscribe([]);
    const mapped = mapBatches(
      mapBatches(sub, (n) => n * 10),
      (n) => {
        if (n === 30) throw new Error("no 3s");
        return `#${n}`;
      },
    );
    const ok = recorder<string>();
    expect(nextBatchOr(mapped, ok.waiter)).toBe(WAITING);
    b.publish(1);
    expect(ok.told).toEqual([{ batch: ["#10"] }]);
    b.publish(2);
    expect(nextBatchOr(mapped, ok.waiter)).toEqual(["#20"]);
    const bad = recorder<string>();
    expect(nextBatchOr(mapped, bad.waiter)).toBe(WAITING);
    b.publish(3);
    expect((bad.told[0] as { err: Error }).err.message).toBe("no 3s");
    mapped.close();
  });

  it("a source that hands only promises is waited on through them", async () => {
    let resolve!: (b: readonly number[] | undefined) => void;
    const source: BatchSource<number> = { nextBatch: () => new Promise((r) => (resolve = r)), close: () => undefined };
    const waits = steppedWaits((batch: readonly number[] | undefined) => batch?.map((n) => n + 1));
    const { told, first, waiter } = recorder<number>();
    expect(waits.wait(source, waiter)).toBe(WAITING);
    resolve([1, 2]);
    await first;
    expect(told).toEqual([{ batch: [2, 3] }]);
  });

  it("pumpBatches writes a subscription's bursts in order and ends with it", async () => {
    const b = new Broadcaster<number>();
    const sub = b.subscribe([]);
    const out = new PassThrough({ objectMode: true });
    const got: number[] = [];
    out.on("data", (n: number) => got.push(n));
    const done = pumpBatches(mapBatches(sub, (n) => n + 100), out, new AbortController().signal);
    for (let burst = 0; burst < 5; burst++) {
      for (let i = 0; i < 3; i++) b.publish(burst * 3 + i);
      await new Promise((r) => setImmediate(r));
    }
    b.close();
    expect(await done).toBe(true);
    expect(got).toEqual(Array.from({ length: 15 }, (_, i) => i + 100));
  });
});
