import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SessionCluster } from "../../src/cluster/session-cluster.js";
import { defaultMetadata } from "@skein/goose-sessions/goose-format";
import type { RunEvent, SessionEvent } from "../../src/runs/events.js";
import { RunLeases } from "../../src/cluster/postgres/run-lease.js";

/**
 * The wiring of replicas on one database, in process: two SessionClusters
 * ("replicas" A and B) on one real PostgreSQL, driven the way the session
 * slots drive them (claim, publish into the slot's event log, release).
 */
const log = pino({ level: "silent" });
let pg: PostgresCluster;
let url: string;
let A: SessionCluster;
let B: SessionCluster;

beforeAll(async () => {
  pg = await testPostgres();
});
afterAll(async () => {
  await pg?.stop();
});
beforeEach(async () => {
  url = await pg.createDatabase();
  // A replay window larger than the burst below: its watcher on the other replica may make its first read only
  // after the owner wrote the whole burst (CI saw it under load), and a window smaller than the burst would then
  // answer OUT_OF_RANGE, as it should (that contract has tests of its own).
  const open = (id: string) => SessionCluster.open({ databaseUrl: url, runLeaseMs: 600, databaseWaitMs: 0, eventBatchMs: 20 }, 256, { id, address: "" }, log);
  [A, B] = await Promise.all([open("A"), open("B")]);
});
afterEach(async () => {
  await A?.close();
  await B?.close();
});

async function take(events: AsyncIterable<SessionEvent>, until: (e: SessionEvent) => boolean): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  for await (const e of events) {
    out.push(e);
    if (until(e)) break;
  }
  return out;
}
const isFinished = (e: SessionEvent) => e.event.kind === "finished";
const rows = async (sql: string, params: unknown[] = []) => (await A.store.pool.query(sql, params)).rows;

describe("events of a run across replicas", () => {
  it("a burst of deltas is written in order with consecutive database seqs; the owner's stream and a watcher on the other replica agree; finished ends the lease in the same transaction", async () => {
    const s = await A.store.create(defaultMetadata("/tmp", ""));
    const claim = await A.ownership.claim(s.id, "req-1");
    const log = A.eventLog(s.id);
    const stop = new AbortController();
    const own = log.subscribe([stop.signal]);
    const watched = take(B.eventLog(s.id).follow(0, [stop.signal]), isFinished);
    const deltas: RunEvent[] = Array.from({ length: 100 }, (_, i) => ({ kind: "textDelta", text: `d${i}` }));
    for (const d of deltas) log.publish("req-1", d);
    claim.release();
    log.publish("req-1", { kind: "finished", reason: "stop" });
    const mine = await take(own, isFinished);
    expect(mine.map((e) => e.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
    expect(mine.map((e) => e.event)).toEqual([...deltas, { kind: "finished", reason: "stop" }]);
    expect(await rows("SELECT 1 FROM session_runs WHERE session_id = $1", [s.id])).toEqual([]);
    expect((await watched).map((e) => [e.seq, e.event])).toEqual(mine.map((e) => [e.seq, e.event]));
    expect(Number((await rows("SELECT last_seq FROM session_seq WHERE session_id = $1", [s.id]))[0]!.last_seq)).toBe(101);
    stop.abort();
  });
});

describe("ownership across replicas", () => {
  it("a second claim on the other replica is busy; DeleteSession's claim there cancels the run first", async () => {
    const s = await A.store.create(defaultMetadata("/tmp", ""));
    const claim = await A.ownership.claim(s.id, "req-a");
    await expect(B.ownership.claim(s.id, "req-b")).rejects.toThrow(`session ${s.id} is busy with request req-a; wait for it or cancel it with CancelReply`);
    claim.signal!.addEventListener("abort", () => claim.release());
    const hold = await B.ownership.claimForDelete(s.id);
    expect(claim.signal!.aborted).toBe(true);
    expect((claim.signal!.reason as Error).message).toMatch(/cancelled from another replica/);
    expect(await rows("SELECT owner, request_id FROM session_runs WHERE session_id = $1", [s.id])).toEqual([{ owner: "B", request_id: "delete" }]);
    hold.release();
  });

  it("a lease taken over: the old owner's run is stopped, its writes refused, and its stream shows the taker's RUN_INTERRUPTED and finished", async () => {
    const s = await A.store.create(defaultMetadata("/tmp", ""));
    const claim = await A.ownership.claim(s.id, "req-old");
    const log = A.eventLog(s.id);
    const stop = new AbortController();
    const own = log.subscribe([stop.signal])[Symbol.asyncIterator]();
    log.publish("req-old", { kind: "textDelta", text: "before" });
    const seen = [(await own.next()).value as SessionEvent];
    // A stalls: its lease runs out and B's next claim takes the session over.
    await rows("UPDATE session_runs SET lease_expires_at = now() - interval '1 second' WHERE session_id = $1", [s.id]);
    const taken = await B.ownership.claim(s.id, "req-new");
    await expect(claim.store!.append(s.id, { id: null, role: "user", created: 1, content: [{ type: "text", text: "late" }], metadata: { userVisible: true, agentVisible: true } })).rejects.toThrow(/no longer holds session/);
    log.publish("req-old", { kind: "textDelta", text: "after" });
    for (let e = await own.next(); !e.done; e = await own.next()) {
      seen.push(e.value);
      if (isFinished(e.value)) break;
    }
    expect(seen.map((e) => e.event.kind)).toEqual(["textDelta", "error", "finished"]);
    expect(seen[1]!.event).toMatchObject({ kind: "error", code: "RUN_INTERRUPTED" });
    expect(seen.every((e) => e.requestId === "req-old")).toBe(true);
    expect(claim.signal!.aborted).toBe(true);
    expect((await A.store.load(s.id))!.messages).toEqual([]);
    claim.release();
    taken.release();
    stop.abort();
  });
});

describe("the sweeper's takeover", () => {
  it("takes only an expired lease, never creates a hold, and of concurrent takers exactly one wins", async () => {
    const leasesA = new RunLeases(A.store.pool, 600);
    const leasesB = new RunLeases(B.store.pool, 600);
    expect(await leasesA.takeOverExpired("s-none", "takeover", "A")).toBeUndefined();
    expect(await rows("SELECT 1 FROM session_runs WHERE session_id = 's-none'")).toEqual([]);
    const { lease } = await leasesA.acquire("s-1", "req-dead", "dead");
    expect(await leasesB.takeOverExpired("s-1", "takeover", "B")).toBeUndefined();
    await rows("UPDATE session_runs SET lease_expires_at = now() - interval '1 second' WHERE session_id = 's-1'");
    const takers = await Promise.all([leasesA.takeOverExpired("s-1", "takeover", "A"), leasesB.takeOverExpired("s-1", "takeover", "B")]);
    const won = takers.filter((t) => t !== undefined);
    expect(won).toHaveLength(1);
    expect(won[0]!.tookOver).toEqual({ requestId: "req-dead", owner: "dead" });
    expect(await leasesA.release(lease)).toBe(false);
    expect(await leasesA.release(won[0]!.lease)).toBe(true);
  });
});
