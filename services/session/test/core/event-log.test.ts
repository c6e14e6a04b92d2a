import { status } from "@grpc/grpc-js";
import { WAITING } from "@skein/runtime";
import { describe, expect, it } from "vitest";
import { EventBudget, EventLog } from "../../src/runs/event-log.js";
import type { SessionEvent } from "../../src/runs/events.js";

const delta = (text: string) => ({ kind: "textDelta" as const, text });

function filled(capacity: number, n: number, startSeq = 0, budget?: EventBudget): EventLog {
  const log = new EventLog("s1", capacity, startSeq, budget);
  for (let i = 0; i < n; i++) log.publish("r1", delta(String(i)));
  return log;
}

/** Reads what a follower gets right away (buffered events), then stops it. */
async function replay(log: EventLog, afterSeq: number): Promise<number[]> {
  const stop = new AbortController();
  const seqs: number[] = [];
  const it = log.follow(afterSeq, [stop.signal])[Symbol.asyncIterator]();
  // The first next() takes the snapshot and subscribes synchronously; a marker published after it ends the read.
  let pending = it.next();
  log.publish("marker", delta("end"));
  for (;;) {
    const r: IteratorResult<SessionEvent> = await pending;
    pending = it.next();
    if (r.done || r.value.requestId === "marker") break;
    seqs.push(r.value.seq);
  }
  stop.abort();
  await it.return?.();
  return seqs;
}

function code(f: () => unknown): number | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

describe("EventLog cursor rules", () => {
  it("serves every cursor from the oldest kept seq - 1 up to the last seq, and nothing else", async () => {
    const log = filled(4, 3);
    expect(await replay(log, 0)).toEqual([1, 2, 3]);
    expect(await replay(log, 2)).toEqual([3]);
    expect(code(() => log.follow(log.lastSeq + 1, []))).toBe(status.OUT_OF_RANGE);
  });

  it("after the ring wrapped, a cursor before the oldest kept event gets OUT_OF_RANGE, the one just before it is served", async () => {
    const log = filled(3, 7);
    expect(log.buffered).toBe(3);
    expect(code(() => log.follow(3, []))).toBe(status.OUT_OF_RANGE);
    expect(await replay(log, 4)).toEqual([5, 6, 7]);
  });

  it("a log recreated after its window was released serves only a cursor at its last seq (no silent gap)", async () => {
    // What the slot does on release: a new log numbering on from the old last seq, with nothing buffered.
    const again = new EventLog("s1", 8, 70);
    expect(again.lastSeq).toBe(70);
    const err = (() => {
      try {
        again.follow(50, []);
      } catch (e) {
        return e as Error & { code: number };
      }
      return undefined;
    })();
    expect(err?.code).toBe(status.OUT_OF_RANGE);
    expect(err?.message).toMatch(/no longer buffered \(none kept after seq 70\); reload the session with GetSession/);
    expect(await replay(again, 70)).toEqual([]);
  });

  it("releasing the window keeps numbering and gives the events back to the budget", () => {
    const budget = new EventBudget(5);
    const a = filled(4, 4, 0, budget);
    const b = filled(4, 2, 0, budget);
    expect(budget.total).toBe(6);
    expect(budget.over).toBe(true);
    a.releaseWindow();
    expect(budget.total).toBe(2);
    expect(a.lastSeq).toBe(4);
    expect(code(() => a.follow(3, []))).toBe(status.OUT_OF_RANGE);
    a.publish("r2", delta("x"));
    expect(a.lastSeq).toBe(5);
    b.close();
    expect(budget.total).toBe(1);
  });

  it("skipTo moves numbering forward only while nothing is buffered", () => {
    const log = new EventLog("s1", 4, 0);
    log.skipTo(2 ** 32);
    expect(log.publish("r", delta("a")).seq).toBe(2 ** 32 + 1);
    log.skipTo(5); // never back
    expect(log.lastSeq).toBe(2 ** 32 + 1);
    expect(() => log.skipTo(2 ** 33)).toThrow(/cannot jump/);
  });
});

describe("EventLog followers in batches", () => {
  it("a follower gets the buffered window as one batch, then each run of live events as one batch, in order and without repeats", async () => {
    const log = filled(8, 5);
    const stop = new AbortController();
    const f = log.follow(2, [stop.signal]);
    const seqs = (b: readonly SessionEvent[] | undefined) => b?.map((e) => e.seq);
    expect(seqs(await f.nextBatch())).toEqual([3, 4, 5]);
    const waiting = f.nextBatch();
    expect(waiting).toBeInstanceOf(Promise);
    // A provider read's deltas, published one after another in one go, reach the follower together.
    for (let i = 0; i < 4; i++) log.publish("r1", delta(`live ${i}`));
    expect(seqs(await waiting)).toEqual([6, 7, 8, 9]);
    stop.abort();
    expect(await f.nextBatch()).toBeUndefined();
    expect(log.followers).toBe(0);
  });

  it("read without promises (nextBatchOr), a follower gets the window, then each live event from inside its publish (what came while it was not waiting at its next read), then the end", async () => {
    const log = filled(8, 5);
    const stop = new AbortController();
    const f = log.follow(2, [stop.signal]);
    const told: Array<number[] | undefined> = [];
    let wake!: () => void;
    const waiter = {
      batch: (b: readonly SessionEvent[] | undefined) => {
        told.push(b?.map((e) => e.seq));
        wake();
      },
      fail: (err: unknown) => {
        throw err;
      },
    };
    const toldNext = () => new Promise<void>((r) => (wake = r));
    const window = f.nextBatchOr!(waiter);
    expect(window === WAITING ? "waiting" : window?.map((e) => e.seq)).toEqual([3, 4, 5]);
    toldNext();
    expect(f.nextBatchOr!(waiter)).toBe(WAITING);
    for (let i = 0; i < 4; i++) log.publish("r1", delta(`live ${i}`));
    expect(told).toEqual([[6]]);
    const ready = f.nextBatchOr!(waiter);
    expect(ready === WAITING ? "waiting" : ready?.map((e) => e.seq)).toEqual([7, 8, 9]);
    const next = toldNext();
    expect(f.nextBatchOr!(waiter)).toBe(WAITING);
    stop.abort();
    // The end comes after the abort's listeners, not from inside them.
    expect(told).toEqual([[6]]);
    await next;
    expect(told).toEqual([[6], undefined]);
    expect(log.followers).toBe(0);
  });

  it("closing a follower frees its place at once", () => {
    const log = filled(4, 2);
    const f = log.follow(0, []);
    expect(log.followers).toBe(1);
    f.close();
    expect(log.followers).toBe(0);
  });
});
