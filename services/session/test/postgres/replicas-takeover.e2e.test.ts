import { session as pb } from "@skein/proto";
import { openaiText, openaiToolCalls } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { fixtureExt } from "../support/extensions.js";
import { A, B, C, c, isSeqIncreasing, itLogsNoPassword, model, TAKEOVER_WAIT, unansweredToolRequests, useReplicaCluster, work } from "../support/replica-cluster.js";
import { createOn, expectEventually, finishedReason, gate, getOn, hasFinished, kind, ofRequest, replyOn, say, watchOn, type AnyEvent } from "../support/replicas.js";

/**
 * Issue 11's failure cases across three real session service processes on
 * one real PostgreSQL, where a replica lives on but loses its run: its
 * database connections cut, or frozen (SIGSTOP) past its lease and woken after
 * another replica took over, mid-answer or mid-tool-call. Outcomes are
 * awaited, never durations.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;

useReplicaCluster("faults");

describe("the run's replica loses the database", () => {
  it("every connection of B is cut mid-run: the run ends, the history stays valid, the session takes the next Reply anywhere", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("cut off from the database", { pieces: 6 }), holdAfter: 3, hold: g.promise })), "req-cut-db");
    try {
      await w.until((es) => es.some((e) => kind(e) === "textDelta"));
      const cut = await c.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2", [c.databaseName, `%${B.replicaId}%`]);
      expect(cut.length, "B's connections").toBeGreaterThan(0);
    } finally {
      g.release();
    }
    // However B handles it (reconnect and finish, or give up), the run ends for watchers elsewhere.
    await w.until((es) => ofRequest(es, "req-cut-db").some((e) => kind(e) === "finished"), TAKEOVER_WAIT);
    expect(isSeqIncreasing(w.events)).toBe(true);
    const next = replyOn(A.client, s.id, say(model.tag(), "still usable?"));
    await next.until(hasFinished, TAKEOVER_WAIT);
    expect(finishedReason(next.events)).toBe(STOP);
    w.close();
    run.close();
    const history = (await getOn(C.client, s.id)).messages;
    expect(unansweredToolRequests(history)).toEqual([]);
    expect(history.at(-1)!.role).toBe(pb.Role.ROLE_ASSISTANT);
  });
});

describe("a replica whose lease was taken over", () => {
  it("never writes to that session again (frozen past its lease with SIGSTOP, woken with SIGCONT after another replica took over)", async () => {
    const s = await createOn(B.client, work);
    const g = gate();
    // Only the first pieces go out before A freezes; the marker is in the part A gets after waking.
    const late = "LATE-MARKER-FROM-A";
    const tag = model.tag({ events: openaiText(`early words, and then ${late}`, { pieces: 6 }), holdAfter: 3, hold: g.promise });
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(A.client, s.id, say(tag), "req-frozen");
    let snapshot: unknown;
    try {
      await w.until((es) => es.some((e) => kind(e) === "textDelta"));
      A.pause();
      // B or C takes the lease over once it expires and declares the run interrupted.
      await w.until((es) => ofRequest(es, "req-frozen").some((e) => kind(e) === "finished"), TAKEOVER_WAIT);
      expect(finishedReason(ofRequest(w.events, "req-frozen"))).toBe(ERROR);
      expect(ofRequest(w.events, "req-frozen").filter((e) => kind(e) === "error" || kind(e) === "finished").map(kind)).toEqual(["error", "finished"]);
      // A new run on B now holds the session, and finishes.
      const next = replyOn(B.client, s.id, say(model.tag({ events: openaiText("B's answer") }), "next"), "req-after");
      await next.until(hasFinished);
      expect(finishedReason(next.events)).toBe(STOP);
      snapshot = await dbState(s.id);
      // Wake A and let its provider stream finish: A now holds an answer for a session it no longer owns.
      A.resume();
    } finally {
      g.release();
    }
    // A had its chance: the provider's answer to A was read to the end or dropped by A.
    await expectEventually(() => c.model.activeResponses === 0, "A to read or drop the rest of its provider answer");
    // A's own client is told how its run ended: the taker's RUN_INTERRUPTED and finished{error}, nothing of the late answer.
    await run.until(hasFinished, TAKEOVER_WAIT);
    expect(finishedReason(run.events)).toBe(ERROR);
    expect(run.events.some((e) => e.event?.$case === "error" && e.event.value.code === "RUN_INTERRUPTED")).toBe(true);
    expect(JSON.stringify(run.events)).not.toContain("MARKER");
    // Another full run on C afterwards: whatever A still had queued had its chance to land before this one's.
    const later = replyOn(C.client, s.id, say(model.tag({ events: openaiText("C's answer") }), "last"), "req-later");
    await later.until(hasFinished);
    expect(finishedReason(later.events)).toBe(STOP);
    w.close();

    const after = (await dbState(s.id)) as Awaited<ReturnType<typeof dbState>>;
    const before = snapshot as Awaited<ReturnType<typeof dbState>>;
    // Nothing of A's request changed, no message of A's answer exists; the only new rows are req-later's.
    expect(after.frozenEvents).toEqual(before.frozenEvents);
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
    expect(after.messages.slice(before.messages.length).map((m) => m.role)).toEqual(["user", "assistant"]);
    expect(JSON.stringify(after.messages)).not.toContain("MARKER");
    expect(after.events.filter((e) => e.seq > before.maxSeq).every((e) => e.request_id === "req-later")).toBe(true);
    const texts = w.events.filter((e) => e.requestId === "req-frozen").flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : [])).join("");
    expect(texts).not.toContain("MARKER");
    expect(await c.rows("SELECT * FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
  });
});

describe("a replica frozen during a tool call", () => {
  it("the tool's answer arriving after the takeover is never recorded: one toolResponse per request (the taker's), no late text", async () => {
    const s = await createOn(B.client, work, [fixtureExt("fx")]);
    const tag = model.tag(
      { events: openaiToolCalls([{ id: "call_late", name: "fx__sleep", args: { ms: 2_500 } }]) },
      { events: openaiText("LATE-MARKER answer after the tool") },
    );
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(A.client, s.id, say(tag, "sleep a bit"), "req-tool-frozen");
    const askedForTool = (es: AnyEvent[]) => es.some((e) => e.event?.$case === "message" && e.event.value.message!.content.some((x) => x.kind?.$case === "toolRequest"));
    await run.until(askedForTool);
    // The tool (A's child, not frozen) answers while A is frozen; A reads the answer only after the takeover.
    A.pause();
    try {
      await w.until((es) => ofRequest(es, "req-tool-frozen").some((e) => kind(e) === "finished"), TAKEOVER_WAIT);
    } finally {
      A.resume();
    }
    await run.until(hasFinished, TAKEOVER_WAIT);
    expect(finishedReason(run.events)).toBe(ERROR);
    // One more full run elsewhere: anything A still had queued had its chance to land first.
    const later = replyOn(C.client, s.id, say(model.tag(), "after the freeze"), "req-after-freeze");
    await later.until(hasFinished);
    expect(finishedReason(later.events)).toBe(STOP);
    w.close();
    const rows = await c.rows<{ role: string; content_json: { type: string; id?: string; text?: string }[] }>("SELECT role, content_json FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id", [s.id]);
    const responses = rows.flatMap((r) => r.content_json.filter((b) => b.type === "toolResponse").map((b) => b.id));
    expect(responses).toEqual(["call_late"]);
    expect(JSON.stringify(rows)).not.toContain("LATE-MARKER");
    expect(JSON.stringify(rows)).not.toContain("slept 2500");
    expect(unansweredToolRequests((await getOn(B.client, s.id)).messages)).toEqual([]);
  });
});

async function dbState(sessionId: string) {
  const messages = await c.rows<{ id: string; role: string; content_json: unknown }>("SELECT id, role, content_json FROM messages WHERE session_id = $1 ORDER BY id", [sessionId]);
  const events = await c.rows<{ seq: string; request_id: string }>("SELECT seq, request_id FROM session_events WHERE session_id = $1 ORDER BY seq", [sessionId]);
  return {
    messages,
    events: events.map((e) => ({ seq: Number(e.seq), request_id: e.request_id })),
    frozenEvents: events.filter((e) => e.request_id === "req-frozen").map((e) => Number(e.seq)),
    maxSeq: Math.max(0, ...events.map((e) => Number(e.seq))),
  };
}

itLogsNoPassword();
