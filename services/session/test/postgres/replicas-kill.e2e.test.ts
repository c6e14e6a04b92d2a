import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { openaiText, openaiToolCalls } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { fixtureExt } from "../support/extensions.js";
import { A, B, C, c, isSeqIncreasing, itLogsNoPassword, keepFixturesAsOrphans, LEASE_MS, model, TAKEOVER_WAIT, unansweredToolRequests, useReplicaCluster, work } from "../support/replica-cluster.js";
import { createOn, finishedReason, gate, getOn, hasFinished, kind, lastSeqOf, lines, ofRequest, replyOn, say, watchOn, type AnyEvent } from "../support/replicas.js";

/**
 * Issue 11's failure cases across three real session service processes on
 * one real PostgreSQL, where replicas die: the owner of a long run keeps its
 * lease while it lives; kill -9 of the run's replica, and of every replica,
 * ends the run for watchers elsewhere and the session goes on. Outcomes are
 * awaited, never durations.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;

useReplicaCluster("faults");

describe("the owner renews its lease", () => {
  it("a run that outlives its lease several times over is never taken over while its replica lives", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("a slow provider", { pieces: 4 }), holdAfter: 2, hold: g.promise })), "req-long");
    try {
      await run.until((es) => es.some((e) => kind(e) === "textDelta"));
      // Wait on the database, not the clock: the lease's expiry moves on (renewals) past three whole leases.
      const first = await c.rows<{ t: Date }>("SELECT lease_expires_at AS t FROM session_runs WHERE session_id = $1", [s.id]);
      const start = first[0]!.t.getTime();
      for (;;) {
        const now = await c.rows<{ t: Date; owner: string; request_id: string }>("SELECT lease_expires_at AS t, owner, request_id FROM session_runs WHERE session_id = $1", [s.id]);
        expect(now[0], "the run's lease row").toMatchObject({ owner: B.replicaId, request_id: "req-long" });
        if (now[0]!.t.getTime() - start >= 3 * LEASE_MS) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    expect(finishedReason(run.events)).toBe(STOP);
    await w.until(hasFinished);
    w.close();
    expect(w.events.some((e) => e.event?.$case === "error")).toBe(false);
    expect(lines(w.events)).toEqual(lines(run.events));
  });
});

describe("a replica dies mid-run (kill -9)", () => {
  it("watchers on another replica get RUN_INTERRUPTED and finished{error}, the history is made valid, the next Reply on another replica is accepted", async () => {
    const s = await createOn(A.client, work, [fixtureExt("fx")]);
    // B runs a tool that never answers in time; B dies while the tool request is open.
    const tag = model.tag({ events: openaiToolCalls([{ id: "call_sleep", name: "fx__sleep", args: { ms: 120_000 } }]) });
    const w = watchOn(C.client, s.id, 0);
    // A second watcher on the doomed replica itself: it loses its connection and resumes on A.
    const onB = watchOn(B.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(tag, "sleep please"), "req-doomed");
    const askedForTool = (es: AnyEvent[]) => es.some((e) => e.event?.$case === "message" && e.event.value.message!.content.some((x) => x.kind?.$case === "toolRequest"));
    await w.until(askedForTool);
    await onB.until(askedForTool);
    keepFixturesAsOrphans();
    const seenBefore = lastSeqOf(w.events);
    await B.kill();
    void run.ended;
    expect((await onB.ended)?.code).toBe(status.UNAVAILABLE);
    const resumed = watchOn(A.client, s.id, lastSeqOf(onB.events));
    await resumed.until(hasFinished, TAKEOVER_WAIT);
    resumed.close();

    await w.until(hasFinished, TAKEOVER_WAIT);
    const doomed = ofRequest(w.events, "req-doomed");
    const tail = doomed.slice(-2);
    expect(tail.map(kind)).toEqual(["error", "finished"]);
    // Two sweeping replicas (A and C) raced for the dead lease: exactly one declared the run interrupted.
    expect(doomed.filter((e) => kind(e) === "error" || kind(e) === "finished").map(kind)).toEqual(["error", "finished"]);
    expect(tail[0]!.event?.$case === "error" && tail[0]!.event.value.code).toBe("RUN_INTERRUPTED");
    expect(finishedReason(doomed)).toBe(ERROR);
    expect(isSeqIncreasing(w.events)).toBe(true);
    expect(tail[0]!.seq).toBeGreaterThan(seenBefore);
    // Dropped by B, resumed on A: exactly the same events as C's watcher, none twice.
    expect(lines([...onB.events, ...resumed.events])).toEqual(lines(doomed));

    const history = (await getOn(A.client, s.id)).messages;
    expect(unansweredToolRequests(history)).toEqual([]);
    const rows = await c.rows<{ content_json: { type: string; id?: string }[] }>("SELECT content_json FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id", [s.id]);
    expect(rows.flatMap((r) => r.content_json.filter((b) => b.type === "toolResponse").map((b) => b.id))).toEqual(["call_sleep"]);
    expect(await c.rows("SELECT * FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);

    const next = replyOn(C.client, s.id, say(model.tag(), "are you back?"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    await w.until((es) => es.filter((e) => e.event?.$case === "finished").length === 2);
    w.close();
    expect(isSeqIncreasing(w.events)).toBe(true);
  });

  it("the next seq after a replica restart never repeats one: after kill -9 mid-run and after an idle kill -9", async () => {
    const s = await createOn(C.client, work);
    const first = replyOn(A.client, s.id, say(model.tag()));
    await first.until(hasFinished);
    const seen = new Set(first.events.map((e) => e.seq));

    // Idle: A restarts and runs the session again.
    await A.restart();
    const second = replyOn(A.client, s.id, say(model.tag()));
    await second.until(hasFinished);
    for (const e of second.events) expect(seen.has(e.seq), `seq ${e.seq} repeated`).toBe(false);
    second.events.forEach((e) => seen.add(e.seq));

    // Mid-run: the provider holds the answer, text deltas are out (maybe still batched in A's memory), A dies.
    const g = gate();
    const w = watchOn(B.client, s.id, lastSeqOf(second.events));
    const held = replyOn(A.client, s.id, say(model.tag({ events: openaiText("cut short here", { pieces: 6 }), holdAfter: 4, hold: g.promise })), "req-cut");
    try {
      await held.until((es) => es.some((e) => kind(e) === "textDelta"));
      held.events.forEach((e) => seen.add(e.seq));
      await A.restart();
    } finally {
      g.release();
    }
    await w.until((es) => ofRequest(es, "req-cut").some((e) => kind(e) === "finished"), TAKEOVER_WAIT);
    for (const e of ofRequest(w.events, "req-cut")) {
      if (e.event?.$case === "error" || e.event?.$case === "finished") expect(seen.has(e.seq), `seq ${e.seq} repeated`).toBe(false);
      seen.add(e.seq);
    }
    const third = replyOn(A.client, s.id, say(model.tag()));
    await third.until(hasFinished);
    w.close();
    for (const e of third.events) expect(seen.has(e.seq), `seq ${e.seq} repeated`).toBe(false);
    expect(Math.min(...third.events.map((e) => e.seq))).toBeGreaterThan(Math.max(...seen));
  });
});

describe("every replica dies", () => {
  it("kill -9 of all three mid-run: the first replica back declares the run interrupted, numbering goes on, the session takes a Reply", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("nobody left", { pieces: 4 }), holdAfter: 2, hold: g.promise })), "req-all-dead");
    let seen: AnyEvent[] = [];
    try {
      await w.until((es) => es.some((e) => kind(e) === "textDelta"));
      seen = [...w.events];
      await Promise.all([A.kill(), B.kill(), C.kill()]);
      void run.ended;
      await w.ended;
    } finally {
      g.release();
    }
    await A.restart();
    const resumed = watchOn(A.client, s.id, lastSeqOf(seen));
    await resumed.until(hasFinished, TAKEOVER_WAIT);
    resumed.close();
    expect(resumed.events.map(kind).slice(-2)).toEqual(["error", "finished"]);
    expect(finishedReason(resumed.events)).toBe(ERROR);
    expect(isSeqIncreasing([...seen, ...resumed.events])).toBe(true);
    const next = replyOn(A.client, s.id, say(model.tag(), "anyone?"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    expect(Math.min(...next.events.map((e) => e.seq))).toBeGreaterThan(lastSeqOf(resumed.events));
  });
});

itLogsNoPassword();
