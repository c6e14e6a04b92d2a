import { tmpdir } from "node:os";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import {
  call,
  closeClients,
  collect,
  gate,
  openaiText,
  rejection,
  startOpenAIServer,
  startReplicaCluster,
  startService,
  type FakeModelServer,
  type PostgresCluster,
  type ReplicaCluster,
  type SessionReplica,
} from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cases, createSession, eventually, finishReason, getSession, hangUp, readUntil, reply, watch, type Client, type Event } from "./support/harness.js";

/**
 * Two real session service processes on one test PostgreSQL (testkit startReplicaCluster):
 * every RPC on any replica sees the same sessions, one run per session
 * across replicas, events numbered by the database, cancel from anywhere,
 * a killed replica's run taken over.
 */
let db: PostgresCluster;
let model: FakeModelServer;
const clusters: ReplicaCluster[] = [];

/** For the tests that wait for a takeover: short, so they wait little. */
const TAKEOVER_LEASE_MS = 1_500;
/** For the others: long, so a replica stalled on a loaded machine (other test files run at once) is never taken for dead. */
const STEADY_LEASE_MS = 10_000;

/** `n` replicas on a fresh database of this file's PostgreSQL (testkit's replica harness). */
async function cluster(n: number, leaseMs = STEADY_LEASE_MS): Promise<ReplicaCluster> {
  const c = await startReplicaCluster({ replicas: n, postgres: db, model, leaseMs, env: { SKEIN_EVENT_BUFFER: "128", SKEIN_SHUTDOWN_GRACE_MS: "300" } });
  clusters.push(c);
  return c;
}

const USER = pb.Role.ROLE_USER;
const ASSISTANT = pb.Role.ROLE_ASSISTANT;
const seqs = (events: Event[]) => events.map((e) => Number(e.seq));

beforeAll(async () => {
  db = await testPostgres();
  model = await startOpenAIServer();
});

afterAll(async () => {
  closeClients();
  for (const c of clusters) await c.close();
  await model?.close();
  await db?.stop();
});

describe("two replicas on one database", () => {
  let c: ReplicaCluster;
  let A: SessionReplica;
  let a: Client;
  let b: Client;
  beforeAll(async () => {
    c = await cluster(2);
    [A] = c.replicas;
    [a, b] = c.replicas.map((r) => r.client);
  });

  it("create on A, reply on B, get and list on A and B: the same session, messages and seqs; GetStats names the replica", async () => {
    const s = await createSession(a, tmpdir());
    model.enqueue({ events: openaiText("hello from B", { pieces: 3 }) });
    const before = await getSession(b, s.id, false);
    const watching = watch(a, s.id, Number(before.session!.lastSeq));
    const events = await collect(reply(b, s.id, "hi", "req-b-1"));
    expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    // Numbered by the database, strictly increasing, and the watcher on A sees the very same seqs.
    const watched = await readUntil(watching, (e) => e.event?.$case === "finished");
    hangUp(watching);
    expect(seqs(watched)).toEqual(seqs(events));
    expect(cases(watched)).toEqual(cases(events));
    for (let i = 1; i < events.length; i++) expect(Number(events[i]!.seq)).toBe(Number(events[i - 1]!.seq) + 1);

    for (const client of [a, b]) {
      const got = await getSession(client, s.id);
      expect(got.messages.map((m) => m.role)).toEqual([USER, ASSISTANT]);
      expect(got.session!.lastSeq).toBe(events.at(-1)!.seq);
      expect(got.session!.runningRequestId).toBe("");
      const list = await call(client, client.listSessions, pb.ListSessionsRequest.fromPartial({}));
      expect(list.sessions.map((x) => x.id)).toContain(s.id);
    }
    // A loaded the session's agent at create; its next run reads the history B wrote.
    model.enqueue({ events: openaiText("A again") });
    expect(finishReason(await collect(reply(a, s.id, "and on A?", "req-a-1")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(JSON.stringify(model.requests.at(-1)!.messages)).toMatch(/hi.*hello from B.*and on A\?/s);

    const statsA = await call(a, a.getStats, pb.GetStatsRequest.fromPartial({}));
    const statsB = await call(b, b.getStats, pb.GetStatsRequest.fromPartial({}));
    expect(statsA.replica!.id).toBe(c.replicas[0]!.replicaId);
    expect(statsB.replica!.id).toBe(c.replicas[1]!.replicaId);
    expect(statsA.replica!.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(statsA.cluster).toEqual({ runningReplies: 0, replicasRunning: 0 });
    expect(statsA.sessionsOnDisk).toBe(statsB.sessionsOnDisk);
  });

  it("a second Reply on the other replica is busy; CancelReply there stops the run on its owner", async () => {
    const s = await createSession(a, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("held on A", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(a, s.id, "long one", "req-a-long");
      running.on("error", () => undefined);
      const first = await readUntil(running, (e) => e.event?.$case === "textDelta");
      expect(first.length).toBeGreaterThan(0);
      const lease = await c.rows("SELECT owner, request_id FROM session_runs WHERE session_id = $1", [s.id]);
      expect(lease).toEqual([{ owner: A.replicaId, request_id: "req-a-long" }]);

      const busy = await rejection(collect(reply(b, s.id, "me too", "req-b-2")));
      expect(busy.code).toBe(status.FAILED_PRECONDITION);
      expect(busy.details).toBe(`session ${s.id} is busy with request req-a-long; wait for it or cancel it with CancelReply`);
      const summarizing = await rejection(call(b, b.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })));
      expect(summarizing.code).toBe(status.FAILED_PRECONDITION);
      expect(summarizing.details).toMatch(/busy with request req-a-long/);
      const shown = await getSession(b, s.id, false);
      expect(shown.session!.runningRequestId).toBe("req-a-long");
      const stats = await call(b, b.getStats, pb.GetStatsRequest.fromPartial({}));
      expect(stats.cluster).toEqual({ runningReplies: 1, replicasRunning: 1 });

      const cancelled = await call(b, b.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: s.id, requestId: "req-a-long" }));
      expect(cancelled.cancelled).toBe(true);
      const rest = await readUntil(running, (e) => e.event?.$case === "finished");
      expect(finishReason(rest)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      expect(await c.rows("SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
    } finally {
      hold.release();
    }
    // The session takes the next Reply on the other replica.
    model.enqueue({ events: openaiText("after the cancel") });
    expect(finishReason(await collect(reply(b, s.id, "again", "req-b-3")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
  });

  it("a watcher moves from one replica to the other mid-run and sees every event exactly once; an evicted cursor gets OUT_OF_RANGE", async () => {
    const s = await createSession(b, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("x".repeat(100), { pieces: 100 }), holdAfter: 20, hold: hold.promise });
    const running = reply(a, s.id, "many deltas", "req-a-many");
    running.on("error", () => undefined);
    const onB = watch(b, s.id, 0);
    const firstPart = await readUntil(onB, (e) => e.event?.$case === "textDelta" && Number(e.seq) >= 10);
    hangUp(onB);
    const onA = watch(a, s.id, Number(firstPart.at(-1)!.seq));
    hold.release();
    const secondPart = await readUntil(onA, (e) => e.event?.$case === "finished");
    hangUp(onA);
    const all = await collect(running);
    expect([...seqs(firstPart), ...seqs(secondPart)]).toEqual(seqs(all));

    // 128 events kept per session: after a second long reply, seq 1 has left the window.
    model.enqueue({ events: openaiText("y".repeat(100), { pieces: 100 }) });
    const second = await collect(reply(b, s.id, "more deltas", "req-b-many"));
    expect(Number(second.at(-1)!.seq)).toBeGreaterThan(200);
    const evicted = await rejection(collect(watch(a, s.id, 1)));
    expect(evicted.code).toBe(status.OUT_OF_RANGE);
    expect(evicted.details).toMatch(/no longer buffered.*reload the session with GetSession/);
  });

  it("DeleteSession on one replica cancels the run on the other first and ends watchers everywhere", async () => {
    const s = await createSession(a, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("doomed", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(a, s.id, "soon deleted", "req-a-doomed");
      running.on("error", () => undefined);
      await readUntil(running, (e) => e.event?.$case === "textDelta");
      const watching = watch(a, s.id, 0);
      const watched = new Promise<string>((resolve) => watching.on("data", () => undefined).on("end", () => resolve("ended")).on("error", (e) => resolve(String(e))));
      await call(b, b.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
      const rest = await readUntil(running, (e) => e.event?.$case === "finished");
      expect(finishReason(rest)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      // A watcher on the replica that did not delete it ends too, as on one host.
      expect(await watched).toBe("ended");
      for (const client of [a, b]) expect((await rejection(getSession(client, s.id))).code).toBe(status.NOT_FOUND);
      expect(await c.rows("SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
    } finally {
      hold.release();
    }
  });
});

describe("a replica that dies or stops", () => {
  it("kill -9 of the run's replica: another replica declares it interrupted within the lease, and the session takes the next Reply", async () => {
    const c = await cluster(2, TAKEOVER_LEASE_MS);
    const [doomed, { client: survivor }] = c.replicas as [SessionReplica, SessionReplica];
    const s = await createSession(survivor, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("never finishes", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(doomed.client, s.id, "die mid-run", "req-doomed");
      running.on("error", () => undefined);
      const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
      const watching = watch(survivor, s.id, Number(seen.at(-1)!.seq));
      await doomed.kill();
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      const error = tail.find((e) => e.event?.$case === "error");
      expect(error?.event?.$case === "error" && error.event.value.code).toBe("RUN_INTERRUPTED");
      expect(error?.requestId).toBe("req-doomed");
      expect(finishReason(tail)).toBe(pb.FinishReason.FINISH_REASON_ERROR);
    } finally {
      hold.release();
    }
    await eventually(async () => (await c.rows("SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).length === 0);
    model.enqueue({ events: openaiText("alive again") });
    const next = await collect(reply(survivor, s.id, "still there?", "req-next"));
    expect(finishReason(next)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const got = await getSession(survivor, s.id);
    expect(got.messages.map((m) => m.role)).toEqual([USER, USER, ASSISTANT]);
  });

  it("a replica frozen past its lease: another takes over; once thawed it writes nothing more and its Reply stream shows the takeover's end", async () => {
    const c = await cluster(2, TAKEOVER_LEASE_MS);
    const [frozen, { client: other }] = c.replicas as [SessionReplica, SessionReplica];
    const s = await createSession(other, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("frozen mid-way", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    const running = reply(frozen.client, s.id, "freeze now", "req-frozen");
    running.on("error", () => undefined);
    const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
    frozen.pause();
    try {
      const watching = watch(other, s.id, Number(seen.at(-1)!.seq));
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      expect(tail.map((e) => e.event?.$case === "error" && e.event.value.code)).toContain("RUN_INTERRUPTED");
    } finally {
      frozen.resume();
    }
    const messagesBefore = (await getSession(other, s.id)).messages.length;
    hold.release();
    // The thawed replica learns it lost the lease and stops; its client sees the end the taker recorded.
    const rest = await readUntil(running, (e) => e.event?.$case === "finished");
    const error = rest.find((e) => e.event?.$case === "error");
    expect(error?.event?.$case === "error" && error.event.value.code).toBe("RUN_INTERRUPTED");
    expect(finishReason(rest)).toBe(pb.FinishReason.FINISH_REASON_ERROR);
    await frozen.svc.waitForLog((l) => l.msg === "the run can no longer write to the session; it stops");
    expect((await getSession(other, s.id)).messages.length).toBe(messagesBefore);
  });

  it("graceful shutdown: the replica's run ends cancelled in the database; the other replica keeps serving", async () => {
    const c = await cluster(2);
    const [leaving, { client: staying }] = c.replicas as [SessionReplica, SessionReplica];
    const s = await createSession(staying, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("cut short", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(leaving.client, s.id, "stop soon", "req-leaving");
      running.on("error", () => undefined);
      const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
      const watching = watch(staying, s.id, Number(seen.at(-1)!.seq));
      const stopping = leaving.stop();
      // The run's own client gets its end too, as on one host.
      const own = await readUntil(running, (e) => e.event?.$case === "finished");
      expect(finishReason(own)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      expect((await stopping).code).toBe(0);
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      expect(finishReason(tail)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      expect(await c.rows("SELECT 1 FROM session_runs")).toEqual([]);
    } finally {
      hold.release();
    }
    model.enqueue({ events: openaiText("still serving") });
    expect(finishReason(await collect(reply(staying, s.id, "you there?", "req-staying")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
  });

  it("a database whose schema is newer than the code refuses to start with one line", async () => {
    const c = await cluster(1);
    await c.replicas[0]!.stop();
    await c.rows("INSERT INTO schema_version (version) VALUES (999)");
    const refused = await startService("session", { ...c.env, SKEIN_REPLICA_ID: "second" }, { expectExit: true });
    expect((await refused.exited).code).toBe(2);
    expect(refused.output).toHaveLength(1);
    expect(refused.output[0]).toMatch(/schema is version 999, newer than this skein knows/);
    expect(refused.output[0]).not.toContain(db.password);
  });
});
