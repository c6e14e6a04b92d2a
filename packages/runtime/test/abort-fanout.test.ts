import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { AbortFanout } from "../src/abort-fanout.js";

describe("AbortFanout", () => {
  it("holds one listener on the signal however many wait, and calls each once on abort", () => {
    const ac = new AbortController();
    const fanout = new AbortFanout(ac.signal);
    const called: number[] = [];
    const undos = Array.from({ length: 500 }, (_, i) => fanout.on(() => called.push(i)));
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(1);
    expect(fanout.size).toBe(500);
    ac.abort();
    ac.abort();
    expect(called).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(fanout.size).toBe(0);
    for (const undo of undos) undo();
  });

  it("a removed listener is not called; the same function added twice is two listeners", () => {
    const ac = new AbortController();
    const fanout = new AbortFanout(ac.signal);
    let n = 0;
    const f = () => n++;
    const first = fanout.on(f);
    fanout.on(f);
    const removed = fanout.on(() => (n += 100));
    removed();
    first();
    first();
    expect(fanout.size).toBe(1);
    ac.abort();
    expect(n).toBe(1);
  });

  it("as addEventListener: a listener added after the abort is never called", () => {
    const fanout = new AbortFanout(AbortSignal.abort());
    let called = false;
    fanout.on(() => (called = true))();
    fanout.on(() => (called = true));
    expect(called).toBe(false);
    expect(fanout.size).toBe(0);
  });

  it("a listener that throws does not keep the others from running; its error surfaces as uncaught", async () => {
    const ac = new AbortController();
    const fanout = new AbortFanout(ac.signal);
    const seen: unknown[] = [];
    const onUncaught = (err: unknown) => seen.push(err);
    process.prependListener("uncaughtException", onUncaught);
    try {
      let after = false;
      fanout.on(() => {
        throw new Error("listener failed");
      });
      fanout.on(() => (after = true));
      ac.abort();
      expect(after).toBe(true);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.removeListener("uncaughtException", onUncaught);
    }
    expect(seen).toEqual([new Error("listener failed")]);
  });
});
