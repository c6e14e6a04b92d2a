import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { collect, gate, openaiText, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STORES } from "./support/stored.js";
import { cases, createSession, finishReason, getSession, hangUp, isFinished, readUntil, reply, startHarness, watch, type Harness } from "./support/harness.js";

describe.each(STORES)("WatchSession on %s", (store) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_EVENT_BUFFER: "8" }, { store });
  });
  afterAll(() => h?.close());

  it("replays buffered events after the cursor, then follows the live run", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("first", { pieces: 1, usage: null }) });
    const firstRun = await collect(reply(h.client, s.id, "one"));
    expect(firstRun.map((e) => e.seq)).toEqual([1, 2, 3, 4]);

    const hold = gate();
    h.model.enqueue({ events: openaiText("second answer", { pieces: 2, usage: null }), holdAfter: 2, hold: hold.promise });
    const replying = reply(h.client, s.id, "two", "req-watch-2");
    await readUntil(replying, (e) => e.event?.$case === "textDelta");

    const watcher = watch(h.client, s.id, 2);
    const replayed = await readUntil(watcher, (e) => e.seq === 6);
    expect(replayed.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    expect(replayed.map((e) => e.requestId)).toEqual([firstRun[0]!.requestId, firstRun[0]!.requestId, "req-watch-2", "req-watch-2"]);
    hold.release();
    const live = await readUntil(watcher, isFinished);
    expect(live.map((e) => e.seq)).toEqual([7, 8, 9]);
    expect(cases(live)).toEqual(["textDelta", "message", "finished"]);
    expect(finishReason(await collect(replying))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    hangUp(watcher);
    expect((await getSession(h.client, s.id, false)).session!.lastSeq).toBe(9);
  });

  it("tells a client whose cursor was evicted to reload with GetSession", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("a long answer in many pieces", { pieces: 10 }) });
    const events = await collect(reply(h.client, s.id, "many events"));
    expect(events.length).toBeGreaterThan(8);
    const last = events.at(-1)!.seq;
    const err = await rejection(collect(watch(h.client, s.id, 0)));
    expect(err.code).toBe(status.OUT_OF_RANGE);
    expect(err.details).toMatch(/no longer buffered \(oldest kept: \d+\); reload the session with GetSession/);
    const ahead = await rejection(collect(watch(h.client, s.id, last + 5)));
    expect(ahead.code).toBe(status.OUT_OF_RANGE);
    expect(ahead.details).toMatch(/ahead of/);
    // The oldest cursor still served: exactly the 8 buffered events.
    const w = watch(h.client, s.id, last - 8);
    const tail = await readUntil(w, isFinished);
    hangUp(w);
    expect(tail.map((e) => e.seq)).toEqual(Array.from({ length: 8 }, (_, i) => last - 7 + i));
  });

  it("answers NOT_FOUND for an unknown session and ends followers when the session is deleted", async () => {
    const missing = await rejection(collect(watch(h.client, "20990101_000000", 0)));
    expect(missing.code).toBe(status.NOT_FOUND);
    const s = await createSession(h.client);
    const w = watch(h.client, s.id, 0);
    // A reply the watcher follows to its end shows it is subscribed before the deletion.
    await collect(reply(h.client, s.id, "hi"));
    await readUntil(w, isFinished);
    const ended = collect(w);
    await new Promise<void>((resolve, reject) => h.client.deleteSession({ sessionId: s.id }, (err) => (err ? reject(err) : resolve())));
    expect(await ended).toEqual([]);
  });
});
