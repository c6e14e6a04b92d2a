import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { openaiText, openaiToolCalls, processesMarked, processesUnder, startReplicaCluster, startService, testMarker } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { markedFixtureExt } from "../support/extensions.js";
import { A, B, C, c, itLogsNoPassword, LEASE_MS, model, orphans, pgc, useReplicaCluster, work } from "../support/replica-cluster.js";
import { createOn, expectEventually, finishedReason, gate, getOn, hasFinished, kind, lastSeqOf, lines, listOn, ofRequest, replyOn, say, statsOn, watchOn } from "../support/replicas.js";

/**
 * Issue 11's failure cases across three real session service processes on
 * one real PostgreSQL, around a replica's life: graceful shutdown, per-replica
 * limits, idle eviction and clean-up after a restart, N replicas migrating a
 * fresh database at once, and a database that cannot be reached. Outcomes are
 * awaited, never durations.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_CANCELLED: CANCELLED } = pb.FinishReason;

useReplicaCluster("faults");

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
    const marker = testMarker("replica-idle");
    const ext = markedFixtureExt(marker, "idle");
    const s = await createOn(E.client, work, [ext]);
    const first = replyOn(E.client, s.id, say(model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "idle__pid", args: {} }]) }, { events: openaiText("ok") }), "first"));
    await first.until(hasFinished);
    const onE = processesUnder(E.pid, marker);
    expect(onE.length).toBe(1);
    onE.forEach((pid) => orphans.add(pid));
    const w = watchOn(C.client, s.id, lastSeqOf(first.events));
    // Nobody calls E: its timer alone evicts the agent.
    await expectEventually(() => !processesMarked(marker).includes(onE[0]!), "E to evict the idle agent");
    expect((await statsOn(E.client)).evictions).toBeGreaterThanOrEqual(1);
    const next = replyOn(A.client, s.id, say(model.tag(), "after the eviction"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(next.events));
    for (const pid of processesMarked(marker)) orphans.add(pid);
  });

  it("a replica restarted in place after kill -9 ends the extension processes its predecessor left", async () => {
    const marker = testMarker("replica-orphan");
    // FIXTURE_STAY: the fixture outlives its stdin closing, as many real servers do.
    const ext = markedFixtureExt(marker, "stay", { FIXTURE_STAY: "1" });
    const s = await createOn(A.client, work, [ext]);
    // The session's turn runs on B: B starts the extension (A may have one too, from CreateSession).
    await replyOn(B.client, s.id, say(model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "stay__pid", args: {} }]) }, { events: openaiText("ok") }), "pid")).until(hasFinished);
    const onB = processesUnder(B.pid, marker);
    expect(onB.length).toBe(1);
    onB.forEach((pid) => orphans.add(pid));
    await B.kill();
    expect(processesMarked(marker)).toContain(onB[0]);
    await B.restart();
    await expectEventually(() => !processesMarked(marker).includes(onB[0]!), "B's predecessor's extension to be ended");
    for (const pid of processesMarked(marker)) orphans.add(pid);
  });
});

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
    // No retrying (database-outage.e2e covers SKEIN_DATABASE_WAIT_MS): the answer, not the wait, is what this test is about.
    const down = await startService("session", { ...c.env, SKEIN_DATABASE_URL: url.toString(), SKEIN_DATABASE_WAIT_MS: "0", SKEIN_REPLICA_ID: "unreachable" }, { expectExit: true });
    expect((await down.exited).code).toBe(2);
    expect(down.output).toEqual([expect.stringMatching(/postgresql:\/\/skein_test:\*+@127\.0\.0\.1:1\//)]);
    expect(down.output[0]).not.toContain(pgc.password);
  });
});

itLogsNoPassword();
