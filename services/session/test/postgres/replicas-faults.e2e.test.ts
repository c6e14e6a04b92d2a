import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { openaiText, openaiToolCalls, startReplicaCluster, startService, type PostgresCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fixtureEntry } from "../extensions/helpers.js";
import { fixtureExt, processesRunning } from "../support/extensions.js";
import { createOn, expectEventually, finishedReason, gate, getOn, hasFinished, kind, lastSeqOf, lines, listOn, ofRequest, replyOn, say, statsOn, TaggedModel, watchOn, type AnyEvent } from "../support/replicas.js";

/**
 * Issue 11's failure cases across three real session service processes on
 * one real PostgreSQL: kill -9 of the run's replica, a frozen replica whose
 * lease is taken over, graceful shutdown, restarts, and N replicas migrating
 * a fresh database at once. Outcomes are awaited, never durations.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;
/** Short for quick takeovers, yet renewed (every third) with room for a loaded machine's stalls. */
const LEASE_MS = 3_000;
/** Long enough for any takeover on a loaded machine (the contract: within SKEIN_RUN_LEASE_MS). */
const TAKEOVER_WAIT = 60_000;

let pgc: PostgresCluster;
let c: ReplicaCluster;
let model: TaggedModel;
let work: string;
let A: SessionReplica, B: SessionReplica, C: SessionReplica;
/** Extension processes a killed replica left behind (its children, now orphans): ended after each test. */
const orphans = new Set<number>();

beforeAll(async () => {
  pgc = await testPostgres();
  work = await mkdtemp(join(tmpdir(), "skein-replica-faults-"));
  c = await startReplicaCluster({ postgres: pgc, replicas: 3, leaseMs: LEASE_MS, env: { SKEIN_SHUTDOWN_GRACE_MS: "1000" } });
  [A, B, C] = c.replicas as [SessionReplica, SessionReplica, SessionReplica];
  model = new TaggedModel(c.model, () => ({ events: openaiText("Hello from the fake model.") }));
});
afterEach(async () => {
  for (const pid of orphans) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  orphans.clear();
  // Every test leaves all three replicas running (a frozen one woken first).
  for (const r of c?.replicas ?? []) {
    if (r.alive) r.resume();
    else await r.restart();
  }
});
afterAll(async () => {
  await c?.close();
  await pgc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const isSeqIncreasing = (events: AnyEvent[]) => events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq);

/** Every toolRequest of the history has its toolResponse (goose's rule for a valid conversation). */
function unansweredToolRequests(messages: pb.Message[]): string[] {
  const asked = messages.flatMap((m) => m.content.flatMap((x) => (x.kind?.$case === "toolRequest" ? [x.kind.value.id] : [])));
  const answered = new Set(messages.flatMap((m) => m.content.flatMap((x) => (x.kind?.$case === "toolResponse" ? [x.kind.value.id] : []))));
  return asked.filter((id) => !answered.has(id));
}

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
    for (const pid of processesRunning(fixtureEntry)) orphans.add(pid);
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

describe("graceful shutdown of one replica", () => {
  it("SIGTERM mid-run: the run gets the grace period, then ends cancelled; the other replicas keep serving", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const w = watchOn(C.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("never done", { pieces: 4 }), holdAfter: 2, hold: g.promise })), "req-term");
    try {
      await w.until((es) => es.some((e) => kind(e) === "textDelta"));
      const exit = await B.stop();
      expect(exit).toEqual({ code: 0, signal: null });
      await w.until((es) => ofRequest(es, "req-term").some((e) => kind(e) === "finished"));
      expect(finishedReason(ofRequest(w.events, "req-term"))).toBe(CANCELLED);
      // B's own client got the same end, then a clean end of the stream.
      expect(await run.ended).toBeUndefined();
      expect(finishedReason(run.events)).toBe(CANCELLED);
    } finally {
      g.release();
    }
    expect(await c.rows("SELECT * FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
    // The others serve the same session and new ones.
    const next = replyOn(C.client, s.id, say(model.tag(), "still there?"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    const fresh = await createOn(A.client, work);
    const other = replyOn(A.client, fresh.id, say(model.tag()));
    await other.until(hasFinished);
    expect(finishedReason(other.events)).toBe(STOP);
    w.close();
    expect((await getOn(A.client, s.id)).messages.at(-1)!.role).toBe(pb.Role.ROLE_ASSISTANT);
  });
});

describe("per-replica limits and clean-up, as on one host", () => {
  it("SKEIN_MAX_LIVE_AGENTS counts this replica's agents only: a full replica refuses, another takes the session", async () => {
    const D = await c.addReplica({ SKEIN_MAX_LIVE_AGENTS: "1" });
    const s1 = await createOn(A.client, work);
    const s2 = await createOn(A.client, work);
    const g = gate();
    const busy = replyOn(D.client, s1.id, say(model.tag({ events: openaiText("held on D", { pieces: 2 }), holdAfter: 1, hold: g.promise })));
    try {
      await busy.until((es) => es.length > 0);
      const refused = await replyOn(D.client, s2.id, say(model.tag(), "no room on D")).ended;
      expect(refused?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(refused?.details).toMatch(/all 1 live agents are busy with replies \(SKEIN_MAX_LIVE_AGENTS=1\)/);
      const elsewhere = replyOn(A.client, s2.id, say(model.tag(), "room on A"));
      await elsewhere.until(hasFinished);
      expect(finishedReason(elsewhere.events)).toBe(STOP);
    } finally {
      g.release();
    }
    await busy.until(hasFinished);
  });

  it("idle eviction is per replica: an idle agent's extensions end by the replica's own timer; a watcher elsewhere follows the next run", async () => {
    const E = await c.addReplica({ SKEIN_SESSION_IDLE_TIMEOUT: "1s", SKEIN_EXTENSION_KILL_GRACE_MS: "500" });
    const marker = `replica-idle-${process.pid}-${Date.now()}`;
    const ext = pb.ExtensionConfig.fromPartial({ ...fixtureExt("idle"), args: [fixtureEntry, `--skein-test=${marker}`] });
    const s = await createOn(E.client, work, [ext]);
    const first = replyOn(E.client, s.id, say(model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "idle__pid", args: {} }]) }, { events: openaiText("ok") }), "first"));
    await first.until(hasFinished);
    const onE = processesRunning(`--skein-test=${marker}`).filter((pid) => parentOf(pid) === E.pid);
    expect(onE.length).toBe(1);
    onE.forEach((pid) => orphans.add(pid));
    const w = watchOn(C.client, s.id, lastSeqOf(first.events));
    // Nobody calls E: its timer alone evicts the agent.
    await expectEventually(() => !processesRunning(`--skein-test=${marker}`).includes(onE[0]!), "E to evict the idle agent");
    expect((await statsOn(E.client)).evictions).toBeGreaterThanOrEqual(1);
    const next = replyOn(A.client, s.id, say(model.tag(), "after the eviction"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(next.events));
    for (const pid of processesRunning(`--skein-test=${marker}`)) orphans.add(pid);
  });

  it("a replica restarted in place after kill -9 ends the extension processes its predecessor left", async () => {
    const marker = `replica-orphan-${process.pid}-${Date.now()}`;
    // FIXTURE_STAY: the fixture outlives its stdin closing, as many real servers do.
    const ext = pb.ExtensionConfig.fromPartial({ ...fixtureExt("stay", { FIXTURE_STAY: "1" }), args: [fixtureEntry, `--skein-test=${marker}`] });
    const s = await createOn(A.client, work, [ext]);
    // The session's turn runs on B: B starts the extension (A may have one too, from CreateSession).
    await replyOn(B.client, s.id, say(model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "stay__pid", args: {} }]) }, { events: openaiText("ok") }), "pid")).until(hasFinished);
    const onB = processesRunning(`--skein-test=${marker}`).filter((pid) => parentOf(pid) === B.pid);
    expect(onB.length).toBe(1);
    onB.forEach((pid) => orphans.add(pid));
    await B.kill();
    expect(processesRunning(`--skein-test=${marker}`)).toContain(onB[0]);
    await B.restart();
    await expectEventually(() => !processesRunning(`--skein-test=${marker}`).includes(onB[0]!), "B's predecessor's extension to be ended");
    for (const pid of processesRunning(`--skein-test=${marker}`)) orphans.add(pid);
  });
});

function parentOf(pid: number): number | undefined {
  try {
    return Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  } catch {
    return undefined;
  }
}

describe("schema migrations", () => {
  it("four replicas starting at once on a fresh database migrate it once and all serve; a database newer than the code refuses to start", async () => {
    const fresh = await startReplicaCluster({ postgres: pgc, replicas: 4, leaseMs: LEASE_MS });
    try {
      const versions = await fresh.rows<{ version: number }>("SELECT version FROM schema_version ORDER BY version");
      expect(versions.length).toBeGreaterThan(0);
      expect(versions.map((v) => v.version)).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      const ids = [];
      for (const r of fresh.replicas) ids.push((await createOn(r.client, work)).id);
      for (const r of fresh.replicas) expect((await listOn(r.client)).sessions.map((x) => x.id).sort()).toEqual([...ids].sort());

      await fresh.rows("INSERT INTO schema_version (version) VALUES (9999)");
      const refused = await startService("session", { ...fresh.env, SKEIN_REPLICA_ID: "too-old" }, { expectExit: true });
      const exit = await refused.exited;
      // Like any unusable setting: exit 2 with one line saying why (and no password in it).
      expect(exit.code).toBe(2);
      expect(refused.output).toEqual([expect.stringMatching(/newer than this skein knows/)]);
      expect(refused.output[0]).not.toContain(pgc.password);
      // The replicas already running keep serving.
      expect((await listOn(fresh.replicas[0]!.client)).sessions.length).toBe(4);
    } finally {
      await fresh.close();
    }
  });
});

describe("secrets", () => {
  it("a replica whose database is unreachable exits 2 with one line, the password masked", async () => {
    const url = new URL(c.databaseUrl);
    url.port = "1"; // nothing listens there
    const down = await startService("session", { ...c.env, SKEIN_DATABASE_URL: url.toString(), SKEIN_REPLICA_ID: "unreachable" }, { expectExit: true });
    expect((await down.exited).code).toBe(2);
    expect(down.output).toEqual([expect.stringMatching(/postgresql:\/\/skein_test:\*+@127\.0\.0\.1:1\//)]);
    expect(down.output[0]).not.toContain(pgc.password);
  });


  it("no replica (killed, frozen, restarted or refused) ever logs the database password", () => {
    for (const r of c.replicas) {
      const text = [...r.svc.output, ...r.svc.logs.map((l) => JSON.stringify(l))].join("\n");
      expect(text.includes(pgc.password), `replica ${r.name}'s log`).toBe(false);
    }
  });
});
