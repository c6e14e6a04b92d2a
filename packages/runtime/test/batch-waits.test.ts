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
  it("a subscription tells its waiter once, after the synchronous run, with every event of that run as one batch", async () => {
    const b = new Broadcaster<number>();
    const sub = b.subscribe([]);
    const { told, first, waiter } = recorder<number>();
    expect(sub.nextBatchOr(waiter)).toBe(WAITING);
    b.publish(1);
    b.publish(2);
    b.publish(3);
    // Not from inside publish: the waiter is told in a microtask.
    expect(told).toEqual([]);
    await first;
    b.publish(4);
    await Promise.resolve();
    expect(told).toEqual([{ batch: [1, 2, 3] }]);
    expect(sub.nextBatchOr(waiter)).toEqual([4]);
    sub.close();
  });

  it("tells a waiting reader the end (close, abort) and a cut-off follower its overflow", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const ended = recorder<number>();
    expect(b.subscribe([ac.signal]).nextBatchOr(ended.waiter)).toBe(WAITING);
    ac.abort();
    await ended.first;
    expect(ended.told).toEqual([{ batch: undefined }]);

    const slow = b.subscribe([], 2);
    const cut = recorder<number>();
    expect(slow.nextBatchOr(cut.waiter)).toBe(WAITING);
    [1, 2, 3].forEach((n) => b.publish(n));
    await cut.first;
    expect(cut.told).toHaveLength(1);
    expect((cut.told[0] as { err: unknown }).err).toBeInstanceOf(SubscriberOverflowError);
  });

  it("layers pass a wake-up on in one call, changed by each layer; a layer's failure goes to the waiter", async () => {
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
    b.publish(2);
    await ok.first;
    expect(ok.told).toEqual([{ batch: ["#10", "#20"] }]);
    const bad = recorder<string>();
    expect(nextBatchOr(mapped, bad.waiter)).toBe(WAITING);
    b.publish(3);
    await bad.first;
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
