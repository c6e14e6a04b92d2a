import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, openaiText, repoRoot, openaiToolCalls, startReplicaCluster, type PostgresCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureExt } from "../support/extensions.js";
import { expectGooseReadable, openLikeGoose } from "../support/goose-db.js";
import {
  cancelOn,
  createOn,
  expectEventually,
  finishedReason,
  gate,
  getOn,
  hasFinished,
  isFinished,
  kind,
  lastSeqOf,
  lines,
  listOn,
  ofRequest,
  replyOn,
  say,
  statsOn,
  TaggedModel,
  watchOn,
  type AnyEvent,
} from "../support/replicas.js";

/**
 * Issue 11's contract across three real session service processes (A, B, C)
 * on one real PostgreSQL: every call of a scenario goes to a different
 * replica than the run's. Fault scenarios (kill -9, SIGSTOP, SIGTERM,
 * restarts, migrations) are in replicas-faults.e2e.test.ts.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED } = pb.FinishReason;
const BUFFER = 64;

let pgc: PostgresCluster;
let c: ReplicaCluster;
let model: TaggedModel;
let work: string;
let A: SessionReplica, B: SessionReplica, C: SessionReplica;

beforeAll(async () => {
  pgc = await testPostgres();
  work = await mkdtemp(join(tmpdir(), "skein-replicas-"));
  // No takeover is wanted here (those are in replicas-faults): the default lease, so no loaded-machine stall
  // ever looks like a dead replica.
  c = await startReplicaCluster({ postgres: pgc, replicas: 3, leaseMs: 10_000, env: { SKEIN_EVENT_BUFFER: String(BUFFER) } });
  [A, B, C] = c.replicas as [SessionReplica, SessionReplica, SessionReplica];
  model = new TaggedModel(c.model, () => ({ events: openaiText("Hello from the fake model.") }));
});
afterAll(async () => {
  await c?.close();
  await pgc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const texts = (events: AnyEvent[]) => events.flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : []));
const stripVolatile = (r: pb.GetSessionResponse) => ({ ...r, session: { ...r.session!, updatedAt: undefined } });

describe("one session seen from every replica", () => {
  it("CreateSession on A, Reply on B, GetSession and ListSessions on C: the same session and messages, in goose's message model", async () => {
    const s = await createOn(A.client, work, [fixtureExt("fx")]);
    const tag = model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "fx__pid", args: {} }]) }, { events: openaiText("The pid is known.") });
    const run = replyOn(B.client, s.id, say(tag, "what is your pid?"));
    await run.until(hasFinished);
    expect(finishedReason(run.events)).toBe(STOP);

    const seen = await Promise.all([A, B, C].map((r) => getOn(r.client, s.id)));
    for (const r of seen.slice(1)) expect(stripVolatile(r)).toEqual(stripVolatile(seen[0]!));
    const got = seen[2]!;
    expect(got.session!.messageCount).toBe(4);
    expect(got.session!.lastSeq).toBe(lastSeqOf(run.events));
    expect(got.messages.map((m) => [m.role, m.content.map((x) => x.kind?.$case)])).toEqual([
      [pb.Role.ROLE_USER, ["text"]],
      [pb.Role.ROLE_ASSISTANT, ["toolRequest"]],
      [pb.Role.ROLE_USER, ["toolResponse"]],
      [pb.Role.ROLE_ASSISTANT, ["text"]],
    ]);
    const listed = (await listOn(C.client)).sessions.find((x) => x.id === s.id);
    expect(listed).toMatchObject({ id: s.id, workingDir: work, messageCount: 4 });

    // The rows themselves are goose's message model: content_json holds goose's content blocks, metadata_json its flags.
    const rows = await c.rows<{ role: string; content_json: Record<string, unknown>[]; metadata_json: Record<string, unknown>; message_id: string }>(
      "SELECT role, content_json, metadata_json, message_id FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id",
      [s.id],
    );
    expect(rows.map((r) => [r.role, r.content_json.map((b) => b.type)])).toEqual([
      ["user", ["text"]],
      ["assistant", ["toolRequest"]],
      ["user", ["toolResponse"]],
      ["assistant", ["text"]],
    ]);
    expect(rows[1]!.content_json[0]).toMatchObject({ type: "toolRequest", id: "call_pid", toolCall: { status: "success", value: { name: "fx__pid", arguments: {} } } });
    expect(rows[2]!.content_json[0]).toMatchObject({ type: "toolResponse", id: "call_pid", toolResult: { status: "success", value: { content: [{ type: "text" }] } } });
    for (const r of rows) expect(r.metadata_json).toMatchObject({ userVisible: expect.any(Boolean), agentVisible: expect.any(Boolean) });
    expect(got.messages.map((m) => m.id)).toEqual(rows.map((r) => r.message_id));

    // The extension process ran on B, the replica that ran the turn.
    const pid = Number((rows[2]!.content_json[0]!.toolResult as { value: { content: { text: string }[] } }).value.content[0]!.text);
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    expect(ppid).toBe(B.pid);
  });

  it("a replica that ran a session before sees what another replica added since (no stale history): B, then A, then B", async () => {
    const s = await createOn(C.client, work);
    const turns: [SessionReplica, string][] = [[B, "first on B"], [A, "second on A"], [B, "third on B"]];
    const tags: string[] = [];
    for (const [r, text] of turns) {
      const tag = model.tag({ events: openaiText(`answer to ${text}`) });
      tags.push(tag);
      const run = replyOn(r.client, s.id, say(tag, text));
      await run.until(hasFinished);
      expect(finishedReason(run.events)).toBe(STOP);
    }
    // The provider request of the third turn (on B) carries the whole conversation, A's turn included.
    const last = c.model.requests.filter((b) => JSON.stringify(b.messages).includes(`[[tag:${tags[2]}]]`)).at(-1)!;
    const said = (last.messages as { role: string; content: unknown }[]).filter((m) => m.role !== "system").map((m) => `${m.role}: ${JSON.stringify(m.content)}`);
    expect(said.map((x) => x.replace(/ \[\[tag:t\d+\]\]/, ""))).toEqual([
      'user: "first on B"',
      'assistant: "answer to first on B"',
      'user: "second on A"',
      'assistant: "answer to second on A"',
      'user: "third on B"',
    ]);
  });

  it("one run per session across replicas: a Reply on any other replica (and on the run's own) is FAILED_PRECONDITION busy", async () => {
    const s = await createOn(C.client, work);
    const g = gate();
    const tag = model.tag({ events: openaiText("a held answer", { pieces: 4 }), holdAfter: 2, hold: g.promise });
    const run = replyOn(B.client, s.id, say(tag), "req-busy-1");
    try {
      await run.until((es) => es.some((e) => kind(e) === "textDelta"));
      for (const r of [A, C, B]) {
        const second = replyOn(r.client, s.id, say(model.tag(), "me too"), `req-busy-${r.name}`);
        const err = await second.ended;
        expect(err?.code, `Reply on ${r.name}`).toBe(status.FAILED_PRECONDITION);
        expect(err?.details).toMatch(/busy with request req-busy-1/);
        expect(second.events).toEqual([]);
      }
      const summarize = await call(A.client, A.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(summarize?.code, "SummarizeSession on A").toBe(status.FAILED_PRECONDITION);
      expect(summarize?.details).toMatch(/busy with request req-busy-1/);
      // The database holds the rule, and every replica reports the running request.
      expect(await c.rows("SELECT request_id FROM session_runs WHERE session_id = $1", [s.id])).toEqual([{ request_id: "req-busy-1" }]);
      for (const r of [A, C]) expect((await getOn(r.client, s.id)).session!.runningRequestId, `GetSession on ${r.name}`).toBe("req-busy-1");
      expect((await listOn(A.client)).sessions.find((x) => x.id === s.id)?.runningRequestId).toBe("req-busy-1");
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    expect(finishedReason(run.events)).toBe(STOP);
    const next = replyOn(C.client, s.id, say(model.tag(), "now me"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    // The refused Replies left nothing: two user messages, two answers.
    const roles = (await getOn(A.client, s.id)).messages.map((m) => m.role);
    expect(roles).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT, pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
  });

  it("a client that got a run's finished can Reply at once on another replica (20 times): the session is free by then", async () => {
    const s = await createOn(A.client, work);
    const refused: string[] = [];
    for (let i = 0; i < 20; i++) {
      const first = replyOn(B.client, s.id, say(model.tag(), `first ${i}`));
      await first.until(hasFinished);
      // At the finished event, not at the end of the stream: what a client reacts to.
      const second = replyOn(C.client, s.id, say(model.tag(), `second ${i}`));
      const err = await second.ended;
      if (err) refused.push(`${i}: ${err.details}`);
      await first.ended;
    }
    expect(refused).toEqual([]);
  });

  it("two replicas racing to start a run on one session, 100 times: exactly one wins each time", async () => {
    const s = await createOn(A.client, work);
    const outcomes: string[] = [];
    for (let i = 0; i < 100; i++) {
      const [first, second] = i % 2 === 0 ? [A, B] : [B, A];
      // The winner's answer is held until the other Reply is decided, so the two really overlap
      // (an instant answer could end the first run before the second Reply even arrives).
      const g = gate();
      const tags = [first, second].map(() => model.tag({ events: openaiText(`race ${i}`), holdAfter: 1, hold: g.promise }));
      const runs = [first, second].map((r, j) => replyOn(r.client, s.id, say(tags[j]!, `race ${i}`), `race-${i}-${r.name}`));
      let decided = false;
      runs.forEach((r) => void r.ended.then(() => (decided = true)));
      try {
        // Decided: one Reply was refused, or both reached the provider (both accepted: the rule broken).
        await expectEventually(() => decided || tags.every((t) => model.requests(t) > 0), `round ${i} to be decided`);
      } finally {
        g.release();
      }
      const ends = await Promise.all(runs.map((r) => r.ended));
      const won = runs.filter((r, j) => ends[j] === undefined && finishedReason(r.events) === STOP).length;
      const busy = ends.filter((e) => e?.code === status.FAILED_PRECONDITION && /busy with request race-/.test(e.details)).length;
      outcomes.push(`${won}/${busy}`);
    }
    expect(outcomes.filter((o) => o !== "1/1"), `round outcomes (winners/busy): ${outcomes.join(" ")}`).toEqual([]);
    const users = await c.rows<{ n: string }>("SELECT count(*) AS n FROM messages WHERE session_id = $1 AND role = 'user'", [s.id]);
    expect(Number(users[0]!.n)).toBe(100);
  }, 300_000);
});

describe("live events and replay from any replica", () => {
  it("a WatchSession on C follows a run on B as it happens, the same events as B's Reply stream", async () => {
    const s = await createOn(A.client, work);
    const w = watchOn(C.client, s.id, 0);
    const g = gate();
    const tag = model.tag({ events: openaiText("one two three four five six", { pieces: 6 }), holdAfter: 3, hold: g.promise });
    const run = replyOn(B.client, s.id, say(tag));
    try {
      // The provider is still holding the rest of the answer: what C shows now, it shows live.
      await w.until((es) => texts(es).length > 0);
      expect(hasFinished(w.events)).toBe(false);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(run.events));
    expect(texts(w.events).join("")).toBe("one two three four five six");
  });

  it("a watcher that reconnects to other replicas mid-run (after_seq) sees every event exactly once, in order", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const tag = model.tag({ events: openaiText("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", { pieces: 24 }), holdAfter: 8, hold: g.promise, delayMs: 20 });
    const w1 = watchOn(A.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(tag));
    const seen: AnyEvent[] = [];
    try {
      await w1.until((es) => texts(es).length > 0);
      w1.close();
      seen.push(...w1.events);
    } finally {
      g.release();
    }
    // Second hop while the rest streams: C from the last seq A delivered.
    const w2 = watchOn(C.client, s.id, lastSeqOf(seen));
    await w2.until((es) => es.length > 0);
    w2.close();
    seen.push(...w2.events);
    if (!hasFinished(seen)) {
      const w3 = watchOn(B.client, s.id, lastSeqOf(seen));
      await w3.until(hasFinished);
      w3.close();
      seen.push(...w3.events);
    }
    await run.until(hasFinished);
    expect(lines(seen)).toEqual(lines(run.events));
    const seqs = seen.map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
  });

  it("a watcher loses nothing when the database drops every replica's LISTEN connection mid-run", async () => {
    const s = await createOn(A.client, work);
    const w = watchOn(C.client, s.id, 0);
    const g = gate();
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("before and after the cut", { pieces: 8 }), holdAfter: 3, hold: g.promise })));
    try {
      await w.until((es) => texts(es).length > 0);
      // A fault from outside: the server ends the listening backends (a restart, a proxy, an idle timeout would too).
      const cut = await c.rows<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND query ~* '^\\s*LISTEN' AND pid <> pg_backend_pid()",
        [c.databaseName],
      );
      expect(cut.length, "LISTEN connections found").toBeGreaterThanOrEqual(c.replicas.length);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(run.events));
  });

  it("a watcher hopping across all three replicas every few events of a long, fast run sees every event exactly once", async () => {
    const s = await createOn(A.client, work);
    // 50 deltas 10 ms apart: the whole run fits the replay window, so a hop never falls out of it.
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("y".repeat(50), { pieces: 50 }), delayMs: 10 })));
    const seen: AnyEvent[] = [];
    for (let hop = 0; !hasFinished(seen); hop++) {
      const w = watchOn([C, A, B][hop % 3]!.client, s.id, lastSeqOf(seen));
      await w.until((es) => es.length >= 5 || hasFinished(es));
      w.close();
      // Whatever arrived before the hang-up took effect counts too: the next hop starts after the last of it.
      seen.push(...w.events);
    }
    await run.until(hasFinished);
    expect(lines(seen)).toEqual(lines(run.events));
    expect(texts(seen).join("")).toBe("y".repeat(50));
  });

  it("an evicted cursor gets OUT_OF_RANGE reload on any replica; the window keeps the last SKEIN_EVENT_BUFFER events", async () => {
    const s = await createOn(A.client, work);
    let last: AnyEvent[] = [];
    let total = 0;
    while (total <= BUFFER + 10) {
      const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("a long answer in many small pieces", { pieces: 20 }) })));
      await run.until(hasFinished);
      last = run.events;
      total = lastSeqOf(last);
    }
    for (const r of [A, C]) {
      const evicted = await watchOn(r.client, s.id, 0).ended;
      expect(evicted?.code, `WatchSession on ${r.name}`).toBe(status.OUT_OF_RANGE);
      expect(evicted?.details).toMatch(/no longer buffered \(oldest kept: \d+\); reload the session with GetSession/);
      const ahead = await watchOn(r.client, s.id, total + 5).ended;
      expect(ahead?.code).toBe(status.OUT_OF_RANGE);
      expect(ahead?.details).toMatch(/ahead of/);
    }
    // The oldest cursor still served replays exactly the window.
    const w = watchOn(C.client, s.id, total - BUFFER);
    await w.until((es) => es.length >= BUFFER && hasFinished(es.slice(-1)));
    w.close();
    expect(w.events.map((e) => e.seq)).toEqual(Array.from({ length: BUFFER }, (_, i) => total - BUFFER + 1 + i));
    expect(lines(w.events.slice(-last.length))).toEqual(lines(last));
    // Bounded in the database too (trimming may lag a little behind the replay window, never grow without bound).
    const kept = await c.rows<{ n: string }>("SELECT count(*) AS n FROM session_events WHERE session_id = $1", [s.id]);
    expect(Number(kept[0]!.n)).toBeGreaterThanOrEqual(BUFFER);
    expect(Number(kept[0]!.n)).toBeLessThanOrEqual(2 * BUFFER);
  });
});

describe("cancel from any replica", () => {
  it("CancelReply on C stops the run on B: the run ends cancelled, the provider stream is dropped, nothing follows", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    // The provider would hold the rest forever: only a cancel that reaches B ends this run.
    const tag = model.tag({ events: openaiText("never finished", { pieces: 4 }), holdAfter: 2, hold: g.promise });
    const w = watchOn(A.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(tag), "req-cancel");
    try {
      await w.until((es) => texts(es).length > 0);
      expect((await cancelOn(C.client, s.id, "some-other-request")).cancelled).toBe(false);
      expect((await cancelOn(C.client, s.id, "req-cancel")).cancelled).toBe(true);
      // The contract says within 1 s; asserting time is for benchmarks. The generous bound only turns a
      // cancel that never arrives into a failure instead of a hang (the held provider never ends the run).
      await run.until(hasFinished, 20_000);
      await w.until(hasFinished, 20_000);
      expect(finishedReason(run.events)).toBe(CANCELLED);
      expect(finishedReason(w.events)).toBe(CANCELLED);
      // B really stopped: it dropped the provider's stream.
      await expectEventually(() => c.model.activeResponses === 0, "the held provider response to be abandoned");
    } finally {
      g.release();
    }
    expect((await cancelOn(C.client, s.id, "")).cancelled).toBe(false);
    // Nothing of the cancelled request after its finished; the session takes the next Reply.
    const next = replyOn(A.client, s.id, say(model.tag(), "again"));
    await next.until(hasFinished);
    await w.until((es) => es.filter(isFinished).length === 2);
    w.close();
    const cancelled = ofRequest(w.events, "req-cancel");
    expect(cancelled.at(-1)!.event?.$case).toBe("finished");
    expect(lines(cancelled)).toEqual(lines(run.events));
    expect(finishedReason(next.events)).toBe(STOP);
    // History valid after the cancel: the user message stays, no half answer.
    const msgs = (await getOn(C.client, s.id)).messages;
    expect(msgs.at(-1)!.role).toBe(pb.Role.ROLE_ASSISTANT);
  });
});

describe("cancel and delete from any replica, also without notifications", () => {
  it("CancelReply on C still reaches B when every LISTEN connection was just cut (the poll fallback)", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("never finished", { pieces: 4 }), holdAfter: 2, hold: g.promise })), "req-cancel-cut");
    try {
      await run.until((es) => texts(es).length > 0);
      await c.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query ~* '^\\s*LISTEN' AND pid <> pg_backend_pid()", [c.databaseName]);
      expect((await cancelOn(C.client, s.id, "req-cancel-cut")).cancelled).toBe(true);
      // Generous bound, not a timing assertion: the provider never ends this run, only the cancel does.
      await run.until(hasFinished, 20_000);
      expect(finishedReason(run.events)).toBe(CANCELLED);
    } finally {
      g.release();
    }
    const next = replyOn(C.client, s.id, say(model.tag(), "again"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
  });

  it("DeleteSession on C while B runs the session: the run ends, the session is gone on every replica, no rows left", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const w = watchOn(A.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("deleted underway", { pieces: 4 }), holdAfter: 2, hold: g.promise })), "req-deleted");
    try {
      await w.until((es) => texts(es).length > 0);
      await call(C.client, C.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
      // As on one host: the run is cancelled first (its stream ends with finished{cancelled}) …
      await run.ended;
      expect(finishedReason(run.events)).toBe(CANCELLED);
    } finally {
      g.release();
    }
    for (const r of [A, B, C]) {
      const err = await getOn(r.client, s.id).then(() => undefined, (e: { code: number }) => e);
      expect(err?.code, `GetSession on ${r.name}`).toBe(status.NOT_FOUND);
      expect((await listOn(r.client)).sessions.some((x) => x.id === s.id)).toBe(false);
    }
    for (const table of ["sessions WHERE id = $1", "messages WHERE session_id = $1", "session_runs WHERE session_id = $1"]) {
      expect(await c.rows(`SELECT 1 FROM ${table}`, [s.id]), table).toEqual([]);
    }
    // B's run did not write after the delete (no session row came back with its answer).
    await expectEventually(() => c.model.activeResponses === 0, "B to drop or finish its provider answer");
    expect(await c.rows("SELECT 1 FROM sessions WHERE id = $1", [s.id])).toEqual([]);
    // … and a follower of the deleted session on another replica is ended too.
    try {
      await w.until(() => false, 30_000).catch((e: Error) => expect(e.message, "the watcher on A").toMatch(/stream ended/));
      expect(await w.ended).toBeUndefined();
    } finally {
      w.close();
    }
  });
});

describe("GetStats across replicas", () => {
  it("names the replica that answered and gives cluster totals from the database", async () => {
    const idle = await Promise.all([A, B, C].map((r) => statsOn(r.client)));
    idle.forEach((st, i) => {
      const r = [A, B, C][i]!;
      expect(st.replica, `GetStats on ${r.name}`).toEqual({ id: r.replicaId, address: r.address });
      expect(st.cluster).toEqual({ runningReplies: 0, replicasRunning: 0 });
    });
    // Sessions "on disk" are the database's, the same on every replica.
    const inDb = Number((await c.rows<{ n: string }>("SELECT count(*) AS n FROM sessions"))[0]!.n);
    expect(idle.map((st) => st.sessionsOnDisk)).toEqual([inDb, inDb, inDb]);
    const s = await createOn(A.client, work);
    const g = gate();
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("held", { pieces: 2 }), holdAfter: 1, hold: g.promise })));
    try {
      await run.until((es) => es.length > 0);
      const onA = await statsOn(A.client);
      expect(onA.runningReplies).toBe(0);
      expect(onA.cluster).toEqual({ runningReplies: 1, replicasRunning: 1 });
      expect((await statsOn(B.client)).runningReplies).toBe(1);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    expect((await statsOn(C.client)).cluster, "right after the run's finished").toEqual({ runningReplies: 0, replicasRunning: 0 });
  });
});

describe("a session can leave the cluster", () => {
  it("skein session export --store postgres writes a goose sessions.db that goose reads; import brings it back equal", async () => {
    const s = await createOn(A.client, work, [fixtureExt("fx")]);
    const tag = model.tag({ events: openaiToolCalls([{ id: "call_x", name: "fx__pid", args: {} }]) }, { events: openaiText("Done with tools.") });
    await replyOn(B.client, s.id, say(tag, "use a tool")).until(hasFinished);
    const before = await getOn(C.client, s.id);
    const out = await mkdtemp(join(work, "export-"));
    const env = { SKEIN_DATABASE_URL: c.databaseUrl };

    const exported = await runCli(["session", "export", s.id, "--to", out, "--store", "postgres"], env);
    expect(exported.code, exported.stderr).toBe(0);
    const db = openLikeGoose(join(out, "sessions.db"));
    try {
      const goose = expectGooseReadable(db, s.id);
      expect(goose.map((m) => [m.role, m.content.map((b) => b.type)])).toEqual(before.messages.map((m) => [m.role === pb.Role.ROLE_USER ? "user" : "assistant", m.content.map((x) => x.kind?.$case)]));
    } finally {
      db.close();
    }
    const jsonl = await runCli(["session", "export", s.id, "--to", out, "--store", "postgres", "--format", "jsonl"], env);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    expect(jsonl.stdout).toMatch(new RegExp(`${s.id}\\.jsonl \\(4 messages\\)`));

    await call(B.client, B.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
    const gone = await getOn(A.client, s.id).catch((e: { code: number }) => e);
    expect((gone as { code: number }).code).toBe(status.NOT_FOUND);

    const imported = await runCli(["session", "import", join(out, "sessions.db"), "--store", "postgres"], env);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`imported ${s.id} \\(4 messages\\)`));
    const after = await getOn(A.client, s.id);
    expect(after.messages).toEqual(before.messages);
    expect({ ...after.session!, updatedAt: undefined, lastSeq: 0 }).toEqual({ ...before.session!, updatedAt: undefined, lastSeq: 0 });
  });
});

describe("secrets", () => {
  it("no replica ever logs the database password", () => {
    for (const r of c.replicas) {
      const text = [...r.svc.output, ...r.svc.logs.map((l) => JSON.stringify(l))].join("\n");
      expect(text.length).toBeGreaterThan(0);
      expect(text.includes(pgc.password), `replica ${r.name}'s log`).toBe(false);
    }
  });
});

/** The checked-in CLI bin, as `npx skein` runs it, with only the variables given (none of the test's SKEIN_*). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith("SKEIN_"))) as Record<string, string>;
  return new Promise((resolve) => {
    execFile(process.execPath, [`${repoRoot}packages/cli/bin/skein.js`, ...args], { env: { ...clean, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

