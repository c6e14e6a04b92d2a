import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RepeatedFaults } from "@skein/runtime";
import type { RunLease } from "@skein/goose-sessions/postgres";
import { ClusterEventLog, type ClusterEventLogDeps } from "../../src/cluster/cluster-event-log.js";
import type { PgEventLog } from "../../src/cluster/postgres/event-log.js";
import type { EventFollower } from "../../src/cluster/postgres/follower.js";
import type { RunEvent, SessionEvent } from "../../src/runs/events.js";

// How a run's events are grouped into appends to the database's log (SKEIN_EVENT_BATCH_MS): the
// grouping logic alone, against an event log that records each append instead of writing it. The
// clock is fake (timers only), so "a few ms apart" and "within the window" are exact, not raced.

const log = pino({ level: "silent" });
const lease: RunLease = { sessionId: "s1", requestId: "r1", leaseId: "l1", owner: "A" };
const delta = (text: string): RunEvent => ({ kind: "textDelta", text });
/** Lets the microtasks and immediates of pending appends run (no timer fires: they are fake). */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

let logs: ClusterEventLog[] = [];
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});
afterEach(() => {
  for (const l of logs) l.close();
  logs = [];
  vi.useRealTimers();
});

/** A ClusterEventLog whose appends are recorded as the kinds of the events in each. */
function recording(batchMs: number) {
  const appends: string[][] = [];
  let seq = 0;
  const events = {
    window: 1024,
    append: async (_s: string, _r: string, encoded: readonly Buffer[]) => {
      await new Promise((r) => setImmediate(r));
      appends.push(encoded.map((b) => (JSON.parse(b.toString()) as { kind: string }).kind));
      return encoded.map(() => ++seq);
    },
  } as unknown as PgEventLog;
  const deps: ClusterEventLogDeps = {
    events,
    follower: {} as EventFollower,
    onDeleted: () => () => undefined,
    leaseOf: () => lease,
    lost: () => undefined,
    retryForMs: 1_000,
    batchMs,
    log,
    appendFaults: new RepeatedFaults(log, "appending run events", "sessions"),
    onClose: () => undefined,
  };
  const eventLog = new ClusterEventLog("s1", deps);
  logs.push(eventLog);
  const seen: SessionEvent[] = [];
  void (async () => {
    for await (const e of eventLog.subscribe([])) seen.push(e);
  })();
  return { eventLog, appends, seen };
}

describe("ClusterEventLog: grouping a run's events into appends", () => {
  it("text deltas a model streams a few ms apart share one append within SKEIN_EVENT_BATCH_MS, in order", async () => {
    const { eventLog, appends, seen } = recording(40);
    for (const t of ["a", "b", "c", "d"]) {
      eventLog.publish("r1", delta(t));
      await vi.advanceTimersByTimeAsync(3);
    }
    await settle();
    expect(appends).toEqual([]);
    await vi.advanceTimersByTimeAsync(40);
    await eventLog.drained();
    expect(appends).toEqual([["textDelta", "textDelta", "textDelta", "textDelta"]]);
    await settle();
    expect(seen.map((e) => (e.event.kind === "textDelta" ? e.event.text : e.event.kind))).toEqual(["a", "b", "c", "d"]);
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it("a message or finished event is written at once, taking the waiting deltas with it", async () => {
    const { eventLog, appends } = recording(10_000);
    eventLog.publish("r1", delta("a"));
    await vi.advanceTimersByTimeAsync(3);
    eventLog.publish("r1", { kind: "finished", reason: "stop" });
    // No timer is advanced past the window: only the `finished` can have ended the wait.
    await settle();
    expect(appends).toEqual([["textDelta", "finished"]]);
  });

  it("with 0, deltas published apart go in appends of their own (only those of one event-loop turn share one)", async () => {
    const { eventLog, appends } = recording(0);
    eventLog.publish("r1", delta("a"));
    eventLog.publish("r1", delta("b"));
    await settle();
    eventLog.publish("r1", delta("c"));
    await eventLog.drained();
    expect(appends).toEqual([["textDelta", "textDelta"], ["textDelta"]]);
  });
});
