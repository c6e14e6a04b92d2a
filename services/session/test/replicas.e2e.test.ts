import { tmpdir } from "node:os";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import { session as pb } from "@skein/proto";
import { call, closeClients, collect, connect, gate, openaiText, rejection, startOpenAIServer, startPostgres, startService, type FakeModelServer, type PostgresCluster, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cases, createSession, eventually, finishReason, getSession, hangUp, readUntil, reply, watch, type Client, type Event } from "./support/harness.js";

/**
 * Two (or three) real session service processes on one test PostgreSQL:
 * every RPC on any replica sees the same sessions, one run per session
 * across replicas, events numbered by the database, cancel from anywhere,
 * a killed replica's run taken over.
 */
let db: PostgresCluster;
let model: FakeModelServer;
const started: ServiceProcess[] = [];

const LEASE_MS = 1_500;

function replicaEnv(url: string, id: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SKEIN_SESSION_STORE: "postgres",
    SKEIN_DATABASE_URL: url,
    SKEIN_REPLICA_ID: id,
    SKEIN_RUN_LEASE_MS: String(LEASE_MS),
    SKEIN_EVENT_BUFFER: "128",
    SKEIN_PROVIDER: "openai",
    SKEIN_MODEL: "fake-model",
    OPENAI_BASE_URL: model.baseURL,
    SKEIN_PROVIDER_MAX_RETRIES: "0",
    SKEIN_SHUTDOWN_GRACE_MS: "300",
    ...extra,
  };
}

async function replica(url: string, id: string, extra: Record<string, string> = {}): Promise<{ svc: ServiceProcess; client: Client }> {
  const svc = await startService("session", replicaEnv(url, id, extra));
  started.push(svc);
  return { svc, client: connect(pb.SessionServiceClient, svc.address) };
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

const USER = pb.Role.ROLE_USER;
const ASSISTANT = pb.Role.ROLE_ASSISTANT;
const seqs = (events: Event[]) => events.map((e) => Number(e.seq));

beforeAll(async () => {
  db = await startPostgres();
  model = await startOpenAIServer();
});

afterAll(async () => {
  if (process.env.SKEIN_TEST_DUMP_LOGS) for (const s of started) console.log(s.logs.map((l) => JSON.stringify(l)).join("\n"), s.output.join("\n"));
  closeClients();
  await Promise.all(started.map((s) => s.stop("SIGKILL")));
  await model?.close();
  await db?.stop();
});

describe("two replicas on one database", () => {
  let url: string;
  let a: Client;
  let b: Client;
  beforeAll(async () => {
    url = await db.createDatabase();
    [{ client: a }, { client: b }] = await Promise.all([replica(url, "replica-a"), replica(url, "replica-b")]);
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

    for (const c of [a, b]) {
      const got = await getSession(c, s.id);
      expect(got.messages.map((m) => m.role)).toEqual([USER, ASSISTANT]);
      expect(got.session!.lastSeq).toBe(events.at(-1)!.seq);
      expect(got.session!.runningRequestId).toBe("");
      const list = await call(c, c.listSessions, pb.ListSessionsRequest.fromPartial({}));
      expect(list.sessions.map((x) => x.id)).toContain(s.id);
    }
    // A loaded the session's agent at create; its next run reads the history B wrote.
    model.enqueue({ events: openaiText("A again") });
    expect(finishReason(await collect(reply(a, s.id, "and on A?", "req-a-1")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(JSON.stringify(model.requests.at(-1)!.messages)).toMatch(/hi.*hello from B.*and on A\?/s);

    const statsA = await call(a, a.getStats, pb.GetStatsRequest.fromPartial({}));
    const statsB = await call(b, b.getStats, pb.GetStatsRequest.fromPartial({}));
    expect(statsA.replica!.id).toBe("replica-a");
    expect(statsB.replica!.id).toBe("replica-b");
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
      const lease = await query<{ owner: string; request_id: string }>(url, "SELECT owner, request_id FROM session_runs WHERE session_id = $1", [s.id]);
      expect(lease).toEqual([{ owner: "replica-a", request_id: "req-a-long" }]);

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
      expect(await query(url, "SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
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
      for (const c of [a, b]) expect((await rejection(getSession(c, s.id))).code).toBe(status.NOT_FOUND);
      expect(await query(url, "SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
    } finally {
      hold.release();
    }
  });
});

describe("a replica that dies or stops", () => {
  it("kill -9 of the run's replica: another replica declares it interrupted within the lease, and the session takes the next Reply", async () => {
    const url = await db.createDatabase();
    const [doomed, { client: survivor }] = await Promise.all([replica(url, "doomed"), replica(url, "survivor")]);
    const s = await createSession(survivor, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("never finishes", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(doomed.client, s.id, "die mid-run", "req-doomed");
      running.on("error", () => undefined);
      const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
      const watching = watch(survivor, s.id, Number(seen.at(-1)!.seq));
      await doomed.svc.stop("SIGKILL");
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      const error = tail.find((e) => e.event?.$case === "error");
      expect(error?.event?.$case === "error" && error.event.value.code).toBe("RUN_INTERRUPTED");
      expect(error?.requestId).toBe("req-doomed");
      expect(finishReason(tail)).toBe(pb.FinishReason.FINISH_REASON_ERROR);
    } finally {
      hold.release();
    }
    await eventually(async () => (await query(url, "SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).length === 0);
    model.enqueue({ events: openaiText("alive again") });
    const next = await collect(reply(survivor, s.id, "still there?", "req-next"));
    expect(finishReason(next)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const got = await getSession(survivor, s.id);
    expect(got.messages.map((m) => m.role)).toEqual([USER, USER, ASSISTANT]);
  });

  it("a replica frozen past its lease: another takes over; once thawed it writes nothing more and its Reply stream shows the takeover's end", async () => {
    const url = await db.createDatabase();
    const [frozen, { client: other }] = await Promise.all([replica(url, "frozen"), replica(url, "other")]);
    const s = await createSession(other, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("frozen mid-way", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    const running = reply(frozen.client, s.id, "freeze now", "req-frozen");
    running.on("error", () => undefined);
    const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
    frozen.svc.proc.kill("SIGSTOP");
    try {
      const watching = watch(other, s.id, Number(seen.at(-1)!.seq));
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      expect(tail.map((e) => e.event?.$case === "error" && e.event.value.code)).toContain("RUN_INTERRUPTED");
    } finally {
      frozen.svc.proc.kill("SIGCONT");
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
    const url = await db.createDatabase();
    const [leaving, { client: staying }] = await Promise.all([replica(url, "leaving"), replica(url, "staying")]);
    const s = await createSession(staying, tmpdir());
    const hold = gate();
    model.enqueue({ events: openaiText("cut short", { pieces: 4 }), holdAfter: 2, hold: hold.promise });
    try {
      const running = reply(leaving.client, s.id, "stop soon", "req-leaving");
      running.on("error", () => undefined);
      const seen = await readUntil(running, (e) => e.event?.$case === "textDelta");
      const watching = watch(staying, s.id, Number(seen.at(-1)!.seq));
      const stopping = leaving.svc.stop("SIGTERM");
      // The run's own client gets its end too, as on one host.
      const own = await readUntil(running, (e) => e.event?.$case === "finished");
      expect(finishReason(own)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      expect((await stopping).code).toBe(0);
      const tail = await readUntil(watching, (e) => e.event?.$case === "finished");
      hangUp(watching);
      expect(finishReason(tail)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
      expect(await query(url, "SELECT 1 FROM session_runs")).toEqual([]);
    } finally {
      hold.release();
    }
    model.enqueue({ events: openaiText("still serving") });
    expect(finishReason(await collect(reply(staying, s.id, "you there?", "req-staying")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
  });

  it("a database whose schema is newer than the code refuses to start with one line", async () => {
    const url = await db.createDatabase();
    const first = await replica(url, "first");
    await first.svc.stop("SIGTERM");
    await query(url, "INSERT INTO schema_version (version) VALUES (999)");
    const refused = await startService("session", replicaEnv(url, "second"), { expectExit: true });
    expect((await refused.exited).code).toBe(2);
    expect(refused.output).toHaveLength(1);
    expect(refused.output[0]).toMatch(/schema is version 999, newer than this skein knows/);
    expect(refused.output[0]).not.toContain(db.password);
  });
});
