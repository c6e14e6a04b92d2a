import { getEventListeners } from "node:events";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { pump, writeWithBackpressure } from "../src/stream-writer.js";

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
