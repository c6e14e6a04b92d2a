import { getEventListeners } from "node:events";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Broadcaster, SubscriberOverflowError } from "../src/broadcast.js";
import type { BatchSource } from "../src/batch-source.js";
import { pump, pumpBatches, writeWithBackpressure } from "../src/stream-writer.js";

/** An object stream that accepts `capacity` messages, then reports a full buffer until released. */
function slowSink(capacity: number) {
  const written: unknown[] = [];
  let release: (() => void) | undefined;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: capacity,
    write(chunk, _enc, cb) {
      written.push(chunk);
      release = () => cb();
    },
  });
  return { sink, written, release: () => release?.() };
}

describe("writeWithBackpressure", () => {
  it("waits for drain when the buffer is full", async () => {
    const { sink, written, release } = slowSink(1);
    // The first message fills the one-message buffer: write() says "wait".
    const first = writeWithBackpressure(sink, 1, new AbortController().signal);
    let done = false;
    void first.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    release();
    expect(await first).toBe(true);
    expect(written).toEqual([1]);
  });

  it("stops waiting when the signal aborts and leaves no drain listener (grpc-js never drains after cancel)", async () => {
    const { sink } = slowSink(1);
    const ac = new AbortController();
    const pending = writeWithBackpressure(sink, 1, ac.signal);
    expect(sink.listenerCount("drain")).toBe(1);
    ac.abort();
    expect(await pending).toBe(false);
    expect(sink.listenerCount("drain")).toBe(0);
  });
});

describe("pump", () => {
  it("writes every item and reports completion", async () => {
    const out: number[] = [];
    const sink = new Writable({ objectMode: true, write: (c, _e, cb) => (out.push(c as number), cb()) });
    async function* source() {
      yield* [1, 2, 3];
    }
    expect(await pump(source(), sink, new AbortController().signal)).toBe(true);
    expect(out).toEqual([1, 2, 3]);
  });

  it("closes the source (its finally runs) when the signal aborts while it waits", async () => {
    const sink = new Writable({ objectMode: true, write: (_c, _e, cb) => cb() });
    const ac = new AbortController();
    let cleaned = false;
    async function* source() {
      try {
        yield 1;
        await new Promise<void>((resolve) => ac.signal.addEventListener("abort", () => resolve(), { once: true }));
        yield 2;
      } finally {
        cleaned = true;
      }
    }
    const p = pump(source(), sink, ac.signal);
    await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    expect(await p).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(cleaned).toBe(true);
  });

  it("holds one abort listener for the whole call, whatever the number of items, and none after it", async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    const sink = new Writable({ objectMode: true, write: (_c, _e, cb) => (seen.push(getEventListeners(ac.signal, "abort").length), cb()) });
    async function* source() {
      for (let i = 0; i < 50; i++) yield i;
    }
    expect(await pump(source(), sink, ac.signal)).toBe(true);
    expect(new Set(seen)).toEqual(new Set([1]));
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("passes on the source's error and leaves no abort listener", async () => {
    const ac = new AbortController();
    const sink = new Writable({ objectMode: true, write: (_c, _e, cb) => cb() });
    async function* source() {
      yield 1;
      throw new Error("source failed");
    }
    await expect(pump(source(), sink, ac.signal)).rejects.toThrow("source failed");
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });
});

/** A batch source fed by hand: `give` queues a batch (or the end), the reader takes it. */
function handSource<T>() {
  const batches: Array<T[] | undefined> = [];
  let wake: (() => void) | undefined;
  let closed = 0;
  let reads = 0;
  const source: BatchSource<T> = {
    nextBatch() {
      reads++;
      if (batches.length > 0) return batches.shift();
      return new Promise<void>((r) => (wake = r)).then(() => batches.shift());
    },
    close: () => void closed++,
  };
  return {
    source,
    give(b: T[] | undefined) {
      batches.push(b);
      wake?.();
      wake = undefined;
    },
    get closed() {
      return closed;
    },
    get reads() {
      return reads;
    },
  };
}

describe("pumpBatches", () => {
  it("writes a ready batch synchronously, in order, one read per batch, and closes the source at its end", async () => {
    const out: number[] = [];
    const sink = new Writable({ objectMode: true, highWaterMark: 1000, write: (c, _e, cb) => (out.push(c as number), cb()) });
    const h = handSource<number>();
    h.give([1, 2, 3]);
    const done = pumpBatches(h.source, sink, new AbortController().signal);
    // The first batch is taken and written before pumpBatches even returns its promise.
    expect(sink.writableLength + out.length).toBe(3);
    h.give([4, 5]);
    h.give(undefined);
    expect(await done).toBe(true);
    expect(out).toEqual([1, 2, 3, 4, 5]);
    expect(h.reads).toBe(3);
    expect(h.closed).toBe(1);
  });

  it("stops writing a batch when the transport is full and goes on, in order, after drain", async () => {
    const { sink, written, release } = slowSink(2);
    const h = handSource<number>();
    h.give([1, 2, 3, 4, 5]);
    h.give(undefined);
    let counted = 0;
    const done = pumpBatches(h.source, sink, new AbortController().signal, () => counted++);
    await new Promise((r) => setImmediate(r));
    // Two messages fill the buffer: the rest of the batch waits for drain.
    expect(written).toEqual([1]);
    expect(sink.writableLength).toBe(2);
    for (let i = 0; i < 5; i++) {
      release();
      await new Promise((r) => setImmediate(r));
    }
    expect(await done).toBe(true);
    expect(written).toEqual([1, 2, 3, 4, 5]);
    expect(counted).toBe(5);
  });

  it("a cancel while waiting for drain ends the pump with no drain or abort listener left and the source closed", async () => {
    const { sink } = slowSink(1);
    const ac = new AbortController();
    const h = handSource<number>();
    h.give([1, 2, 3]);
    const done = pumpBatches(h.source, sink, ac.signal);
    await new Promise((r) => setImmediate(r));
    expect(sink.listenerCount("drain")).toBe(1);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(1);
    ac.abort();
    expect(await done).toBe(false);
    expect(sink.listenerCount("drain")).toBe(0);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    expect(h.closed).toBe(1);
  });

  it("a cancel while the source has nothing ends the pump at once, even if the source never answers", async () => {
    const sink = new Writable({ objectMode: true, write: (_c, _e, cb) => cb() });
    const ac = new AbortController();
    const never: BatchSource<number> = { nextBatch: () => new Promise(() => undefined), close: () => undefined };
    const done = pumpBatches(never, sink, ac.signal);
    await new Promise((r) => setImmediate(r));
    ac.abort();
    expect(await done).toBe(false);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("passes on a source's error (a subscriber cut off for falling behind) and closes it", async () => {
    const { sink, release } = slowSink(1);
    const b = new Broadcaster<number>();
    const sub = b.subscribe([new AbortController().signal], 3, "too slow");
    const done = pumpBatches(sub, sink, new AbortController().signal).catch((err: unknown) => err);
    // The client reads nothing: the first message fills the transport, the queue overflows behind it.
    b.publish(0);
    await new Promise((r) => setImmediate(r));
    expect(sink.listenerCount("drain")).toBe(1);
    for (let i = 1; i < 10; i++) b.publish(i);
    release();
    expect(await done).toBeInstanceOf(SubscriberOverflowError);
    expect(b.size).toBe(0);
  });

  it("delivers a broadcaster's events in order through bursts and waits, as published", async () => {
    const out: number[] = [];
    const sink = new Writable({ objectMode: true, highWaterMark: 4, write: (c, _e, cb) => (out.push(c as number), setImmediate(cb)) });
    const b = new Broadcaster<number>();
    const ac = new AbortController();
    const done = pumpBatches(b.subscribe([ac.signal], 1000), sink, ac.signal);
    let n = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < round; i++) b.publish(n++);
      await new Promise((r) => setImmediate(r));
    }
    while (out.length < n) await new Promise((r) => setImmediate(r));
    b.close();
    expect(await done).toBe(true);
    expect(out).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
