import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { health, session as pb } from "@skein/proto";
import { call, connect, openaiText, rejection, startPostgres, startReplicaCluster, startService, type PostgresCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOn, finishedReason, gate, getOn, hasFinished, listOn, replyOn, say, TaggedModel, watchOn, type AnyEvent } from "../support/replicas.js";

/**
 * Issue 20 against a real PostgreSQL that is stopped and started again
 * (halt/resume keep its data and port): calls answer UNAVAILABLE naming the
 * unreachable database, health goes NOT_SERVING and back (seen by a real
 * Health/Watch client), a reply cut by the outage ends with an error event
 * and `finished`, and nothing written before the outage is missing after it.
 */
const { SERVING, NOT_SERVING } = health.HealthCheckResponse_ServingStatus;
const { FINISH_REASON_STOP: STOP, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;
const SESSION_SERVICE = "skein.session.v1.SessionService";
const UNREACHABLE = /^the session database is unreachable: .+ \(retry\)$/;

let pgc: PostgresCluster;
let c: ReplicaCluster;
let A: SessionReplica;
let model: TaggedModel;
let work: string;

beforeAll(async () => {
  pgc = await startPostgres();
  work = await mkdtemp(join(tmpdir(), "skein-db-outage-"));
  c = await startReplicaCluster({ postgres: pgc, replicas: 1, leaseMs: 2_000 });
  A = c.replicas[0]!;
  model = new TaggedModel(c.model, () => ({ events: openaiText("Hello from the fake model.") }));
});
afterAll(async () => {
  await pgc?.resume().catch(() => undefined);
  await c?.close();
  await pgc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Every status a Health/Watch stream reports, as it arrives. */
function watchHealth(address: string, service: string): { seen: number[]; until(s: number): Promise<void>; close(): void } {
  const client = connect(health.HealthClient, address);
  const stream = client.watch({ service }) as ClientReadableStream<health.HealthCheckResponse>;
  const seen: number[] = [];
  const waiters = new Set<() => void>();
  stream.on("data", (r: health.HealthCheckResponse) => (seen.push(r.status), waiters.forEach((w) => w())));
  stream.on("error", () => undefined);
  return {
    seen,
    until: (s) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`health of ${JSON.stringify(service)} never became ${s}; saw ${seen.join(",")}`)), 60_000);
        const check = () => seen.at(-1) === s && (clearTimeout(timer), waiters.delete(check), resolve());
        waiters.add(check);
        check();
      }),
    close: () => (stream.cancel(), client.close()),
  };
}

/** A reply that worked, to have something stored before the fault. */
async function answeredReply(sessionId: string): Promise<void> {
  const r = replyOn(A.client, sessionId, say(model.tag({ events: openaiText("stored before the outage") })));
  await r.until(hasFinished);
  expect(finishedReason(r.events)).toBe(STOP);
}

/** Replies until one is accepted (the run lease of a cut run may hold the session for one lease period). */
async function replyAccepted(sessionId: string): Promise<AnyEvent[]> {
  for (let i = 0; ; i++) {
    const r = replyOn(A.client, sessionId, say(model.tag({ events: openaiText("after the outage") })));
    const ended = await Promise.race([r.until(hasFinished).then(() => undefined), r.ended]);
    if (ended === undefined) return r.events;
    if (i > 40 || (ended.code !== status.FAILED_PRECONDITION && ended.code !== status.UNAVAILABLE && ended.code !== status.ABORTED)) throw ended;
    await new Promise((res) => setTimeout(res, 250));
  }
}

describe("PostgreSQL stopped while idle", () => {
  it("calls answer UNAVAILABLE naming the unreachable database, health is NOT_SERVING then SERVING, nothing is lost", async () => {
    const s = await createOn(A.client, work);
    await answeredReply(s.id);
    const before = (await getOn(A.client, s.id));
    const overall = watchHealth(A.address, "");
    const own = watchHealth(A.address, SESSION_SERVICE);
    try {
      await overall.until(SERVING);
      await own.until(SERVING);
      await pgc.halt();
      for (const p of [
        getOn(A.client, s.id),
        listOn(A.client),
        call(A.client, A.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work })),
      ]) {
        const err = await rejection(p);
        expect(err.code, err.details).toBe(status.UNAVAILABLE);
        expect(err.details).toMatch(UNREACHABLE);
      }
      // A Reply meets the outage before its run starts (status) or inside it (error event, then finished).
      const r = replyOn(A.client, s.id, say(model.tag({ events: openaiText("never") })));
      const end = await Promise.race([r.until(hasFinished).then(() => undefined), r.ended]);
      if (end) {
        expect(end.code, end.details).toBe(status.UNAVAILABLE);
        expect(end.details).toMatch(UNREACHABLE);
      } else {
        expect(r.events.find((e) => e.event?.$case === "error")?.event?.value).toMatchObject({ code: "STORE_UNAVAILABLE" });
        expect(finishedReason(r.events)).toBe(ERROR);
      }
      await overall.until(NOT_SERVING);
      await own.until(NOT_SERVING);
      const hc = connect(health.HealthClient, A.address);
      expect((await call(hc, hc.check, { service: "" })).status).toBe(NOT_SERVING);
      hc.close();

      const back = Date.now();
      await pgc.resume();
      await overall.until(SERVING);
      await own.until(SERVING);
      console.log(`health SERVING ${Date.now() - back} ms after PostgreSQL accepted connections again`);
      expect(overall.seen).toEqual([SERVING, NOT_SERVING, SERVING]);
      expect(own.seen).toEqual([SERVING, NOT_SERVING, SERVING]);
    } finally {
      overall.close();
      own.close();
      await pgc.resume();
    }
    const after = (await getOn(A.client, s.id));
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
    const events = await replyAccepted(s.id);
    expect(finishedReason(events)).toBe(STOP);
  });
});

describe("PostgreSQL restarted under a running reply", () => {
  it("the reply ends with an error event and finished, the replica stays up, the session takes a new reply once the database is back", async () => {
    const s = await createOn(A.client, work);
    await answeredReply(s.id);
    const before = (await getOn(A.client, s.id));
    const g = gate();
    const r = replyOn(A.client, s.id, say(model.tag({ events: openaiText("cut by the outage", { pieces: 4 }), holdAfter: 2, hold: g.promise })));
    try {
      await r.until((es) => es.some((e) => e.event?.$case === "textDelta"));
      // A restart: down for a moment while the run goes on, then back.
      await pgc.halt();
      g.release();
      await new Promise((res) => setTimeout(res, 1_000));
      await pgc.resume();
      await r.until(hasFinished, 90_000).catch(async (err: unknown) => {
        const e = await r.ended;
        throw new Error(`${String(err)}; ended ${e?.code} ${e?.details}`);
      });
    } finally {
      g.release();
      await pgc.resume();
    }
    const errors = r.events.flatMap((e) => (e.event?.$case === "error" ? [e.event.value.code] : []));
    expect(errors.length, JSON.stringify(errors)).toBeGreaterThan(0);
    expect(errors.every((code) => code === "RUN_INTERRUPTED" || code === "STORE_UNAVAILABLE"), JSON.stringify(errors)).toBe(true);
    expect(finishedReason(r.events)).toBe(ERROR);
    expect(A.alive).toBe(true);
    const events = await replyAccepted(s.id);
    expect(finishedReason(events)).toBe(STOP);
    const after = (await getOn(A.client, s.id));
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
  });
});

describe("PostgreSQL down under a running reply until the stream gives up", () => {
  it("the stream ends UNAVAILABLE naming the database; once it is back, WatchSession shows the run's error and finished, and a new reply is accepted", async () => {
    const s = await createOn(A.client, work);
    await answeredReply(s.id);
    const before = (await getOn(A.client, s.id));
    const g = gate();
    const r = replyOn(A.client, s.id, say(model.tag({ events: openaiText("cut by a long outage", { pieces: 4 }), holdAfter: 2, hold: g.promise })));
    let ended;
    try {
      await r.until((es) => es.some((e) => e.event?.$case === "textDelta"));
      await pgc.halt();
      g.release();
      ended = await r.ended;
    } finally {
      g.release();
      await pgc.resume();
    }
    if (ended) {
      expect(ended.code, ended.details).toBe(status.UNAVAILABLE);
      expect(ended.details).toMatch(UNREACHABLE);
    } else {
      expect(finishedReason(r.events)).toBe(ERROR);
    }
    const w = watchOn(A.client, s.id, 0);
    await w.until((es) => es.some((e) => e.requestId === r.events[0]!.requestId && e.event?.$case === "finished"), 60_000);
    w.close();
    const ofRun = w.events.filter((e) => e.requestId === r.events[0]!.requestId);
    const errors = ofRun.flatMap((e) => (e.event?.$case === "error" ? [e.event.value.code] : []));
    expect(errors.length, JSON.stringify(errors)).toBeGreaterThan(0);
    expect(errors.every((code) => code === "RUN_INTERRUPTED" || code === "STORE_UNAVAILABLE"), JSON.stringify(errors)).toBe(true);
    expect(finishedReason(ofRun)).toBe(ERROR);
    expect(finishedReason(await replyAccepted(s.id))).toBe(STOP);
    const after = await getOn(A.client, s.id);
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
  });
});

describe("a replica starting while its database is down", () => {
  it("waits SKEIN_DATABASE_WAIT_MS for it and serves once it is back", async () => {
    await pgc.halt();
    const starting = c.addReplica({ SKEIN_DATABASE_WAIT_MS: "60000" });
    try {
      await new Promise((res) => setTimeout(res, 1_500));
    } finally {
      await pgc.resume();
    }
    const B = await starting;
    const sessions = await listOn(B.client);
    expect(sessions.sessions.length).toBeGreaterThan(0);
  });

  it("exits 2 with one line once SKEIN_DATABASE_WAIT_MS passed", async () => {
    await pgc.halt();
    try {
      const svc = await startService("session", { ...c.env, SKEIN_DATABASE_WAIT_MS: "1000", SKEIN_REPLICA_ID: "late" }, { expectExit: true });
      const { code } = await svc.exited;
      expect(code).toBe(2);
      const lines = svc.output.filter((l) => l.trim() !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^skein session: SKEIN_DATABASE_URL=".*" cannot be used: the database did not answer within SKEIN_DATABASE_WAIT_MS=1000: /);
      expect(lines[0]).not.toContain(pgc.password);
    } finally {
      await pgc.resume();
    }
  });
});
