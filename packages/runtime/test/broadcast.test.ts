import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { Broadcaster, SubscriberOverflowError } from "../src/broadcast.js";

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("Broadcaster", () => {
  it("delivers each event to every subscriber in order", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const a = b.subscribe([ac.signal])[Symbol.asyncIterator]();
    const c = b.subscribe([ac.signal])[Symbol.asyncIterator]();
    [1, 2, 3].forEach((n) => b.publish(n));
    expect(await take(a, 3)).toEqual([1, 2, 3]);
    expect(await take(c, 3)).toEqual([1, 2, 3]);
    ac.abort();
    expect((await a.next()).done).toBe(true);
  });

  it("ends a waiting subscriber when its signal aborts and forgets it", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const it = b.subscribe([ac.signal])[Symbol.asyncIterator]();
    const pending = it.next();
    expect(b.size).toBe(1);
    ac.abort();
    expect((await pending).done).toBe(true);
    expect(b.size).toBe(0);
  });

  it("holds one abort listener per signal for the subscription's life, however many times it waits, and none after", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const other = new AbortController();
    const it = b.subscribe([ac.signal, other.signal])[Symbol.asyncIterator]();
    for (let n = 0; n < 20; n++) {
      const next = it.next();
      // The subscriber waits here (its queue is empty) until the publish.
      await new Promise((r) => setImmediate(r));
      expect(getEventListeners(ac.signal, "abort")).toHaveLength(1);
      expect(getEventListeners(other.signal, "abort")).toHaveLength(1);
      b.publish(n);
      expect((await next).value).toBe(n);
    }
    const waiting = it.next();
    other.abort();
    expect((await waiting).done).toBe(true);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("cuts off a subscriber that falls behind instead of buffering without bound", async () => {
    const b = new Broadcaster<number>();
    const it = b.subscribe([new AbortController().signal], 2, "watcher too slow")[Symbol.asyncIterator]();
    [1, 2, 3].forEach((n) => b.publish(n));
    await expect(it.next()).rejects.toBeInstanceOf(SubscriberOverflowError);
    expect(b.size).toBe(0);
  });

  it("close() ends every subscription", async () => {
    const b = new Broadcaster<number>();
    const it = b.subscribe([new AbortController().signal])[Symbol.asyncIterator]();
    const pending = it.next();
    b.close();
    expect((await pending).done).toBe(true);
  });

  it("hands a batch reader everything queued at once, synchronously, and a waiting one what comes next in one batch", async () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const sub = b.subscribe([ac.signal]);
    [1, 2, 3].forEach((n) => b.publish(n));
    expect(sub.nextBatch()).toEqual([1, 2, 3]);
    const waiting = sub.nextBatch();
    expect(waiting).toBeInstanceOf(Promise);
    [4, 5].forEach((n) => b.publish(n));
    expect(await waiting).toEqual([4, 5]);
    sub.close();
    expect(b.size).toBe(0);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    expect(sub.nextBatch()).toBeUndefined();
  });

  it("a subscription made with an aborted signal ends at once and is not kept", () => {
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    ac.abort();
    const sub = b.subscribe([ac.signal]);
    expect(b.size).toBe(0);
    expect(sub.nextBatch()).toBeUndefined();
  });
});
