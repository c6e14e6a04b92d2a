import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OutOfRangeError } from "@skein/runtime";
import { defaultMetadata } from "@skein/goose-sessions/goose-format";
import { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import { CancelSignals } from "../../src/cluster/postgres/cancel-signals.js";
import { EVENTS_CHANNEL, PgEventLog, type StoredEvent } from "../../src/cluster/postgres/event-log.js";
import { EventFollower } from "../../src/cluster/postgres/follower.js";
import { PgListener } from "../../src/cluster/postgres/listener.js";
import { LeaseKeeper } from "../../src/cluster/postgres/lease-keeper.js";
import { CANCEL_CHANNEL, LeaseLostError, RunLeases, SessionBusyError } from "../../src/cluster/postgres/run-lease.js";

const log = pino({ level: "silent" });
let cluster: PostgresCluster;
let url: string;
let dbName: string;
/** Two "replicas": each its own store (pool). */
let a: PostgresSessionStore;
let b: PostgresSessionStore;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  cluster = await testPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});
beforeEach(async () => {
  url = await cluster.createDatabase();
  dbName = new URL(url).pathname.slice(1);
  a = await PostgresSessionStore.open(url, log, { poolSize: 20 });
  b = await PostgresSessionStore.open(url, log, { poolSize: 20 });
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await a?.close();
  await b?.close();
});

const ev = (s: string) => Buffer.from(s);
const text = (e: StoredEvent) => e.event.toString();
async function listener(name: string, channels = [EVENTS_CHANNEL, CANCEL_CHANNEL]): Promise<PgListener> {
  const l = new PgListener(url, log, { channels, applicationName: name, reconnectDelayMs: 50 });
  await l.start();
  cleanup.push(() => l.close());
  return l;
}

describe("run lease", () => {
  it("one run per session: a second acquire is busy with the holder's request; release frees it", async () => {
    const leases = new RunLeases(a.pool, 10_000);
    const other = new RunLeases(b.pool, 10_000);
    const { lease } = await leases.acquire("s1", "req-1", "A");
    const err = await other.acquire("s1", "req-2", "B").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionBusyError);
    expect((err as Error).message).toBe("session s1 is busy with request req-1; wait for it or cancel it with CancelReply");
    expect(await other.renew(lease)).toEqual({ held: true, cancelRequested: false });
    expect(await leases.release(lease)).toBe(true);
    expect(await leases.release(lease)).toBe(false);
    expect((await other.acquire("s1", "req-2", "B")).tookOver).toBeUndefined();
  });

  it("an unrenewed lease expires and is taken over once; the old holder's renewal then fails", async () => {
    const leases = new RunLeases(a.pool, 100);
    const { lease } = await leases.acquire("s1", "req-1", "A");
    await sleep(50);
    expect((await leases.renew(lease)).held).toBe(true);
    await expect(new RunLeases(b.pool, 100).acquire("s1", "req-2", "B")).rejects.toBeInstanceOf(SessionBusyError);
    await sleep(150);
    expect(await leases.expired()).toEqual([{ sessionId: "s1", requestId: "req-1", owner: "A" }]);
    const taken = await new RunLeases(b.pool, 10_000).acquire("s1", "req-2", "B");
    expect(taken.tookOver).toEqual({ requestId: "req-1", owner: "A" });
    expect(await leases.renew(lease)).toEqual({ held: false, cancelRequested: false });
    expect(await leases.release(lease)).toBe(false);
    expect(await leases.holder("s1")).toMatchObject({ requestId: "req-2", owner: "B", expired: false });
  });

  it("100 races between two replicas: exactly one winner each time, the others told who holds it", async () => {
    const la = new RunLeases(a.pool, 10_000);
    const lb = new RunLeases(b.pool, 10_000);
    for (let round = 0; round < 100; round++) {
      const session = `race_${round}`;
      const results = await Promise.allSettled([la.acquire(session, `a-${round}`, "A"), lb.acquire(session, `b-${round}`, "B"), la.acquire(session, `a2-${round}`, "A")]);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<{ lease: { requestId: string } }>).value.lease.requestId;
      for (const r of results) if (r.status === "rejected") expect((r.reason as SessionBusyError).requestId).toBe(winner);
    }
  });

  it("100 takeovers of an expired lease race: exactly one winner each time", async () => {
    const short = new RunLeases(a.pool, 1);
    for (let round = 0; round < 100; round++) await short.acquire(`exp_${round}`, `dead-${round}`, "dead");
    await sleep(20);
    const la = new RunLeases(a.pool, 10_000);
    const lb = new RunLeases(b.pool, 10_000);
    for (let round = 0; round < 100; round++) {
      const results = await Promise.allSettled([la.acquire(`exp_${round}`, `a-${round}`, "A"), lb.acquire(`exp_${round}`, `b-${round}`, "B")]);
      const won = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ tookOver?: { requestId: string } }>[];
      expect(won).toHaveLength(1);
      expect(won[0]!.value.tookOver?.requestId).toBe(`dead-${round}`);
    }
  });
});

describe("lease keeper", () => {
  it("keeps a replica's leases alive past their lifetime in one statement per round, and reports a lease taken over", async () => {
    const leases = new RunLeases(a.pool, 300);
    const keeper = new LeaseKeeper(leases, "A", log, 100);
    cleanup.push(() => keeper.close());
    const kept = await Promise.all(["k1", "k2", "k3"].map((s) => leases.acquire(s, `r-${s}`, "A")));
    const lost: string[] = [];
    const stops = kept.map(({ lease }) => keeper.keep(lease, () => lost.push(lease.sessionId)));
    await sleep(700);
    // Alive well past 300 ms: another replica is refused.
    await expect(new RunLeases(b.pool, 300).acquire("k1", "x", "B")).rejects.toBeInstanceOf(SessionBusyError);
    // A stalled replica: stop renewing k2 only, let it lapse, take it over from B.
    stops[1]!();
    await sleep(400);
    await new RunLeases(b.pool, 10_000).acquire("k2", "x", "B");
    expect(lost).toEqual([]);
    // k3 is taken over behind the keeper's back (its owner's row replaced): reported once.
    await b.pool.query("UPDATE session_runs SET lease_id = gen_random_uuid() WHERE session_id = 'k3'");
    await expect.poll(() => lost).toEqual(["k3"]);
    expect(keeper.size).toBe(1);
    stops[0]!();
    expect(keeper.size).toBe(0);
  });
});

describe("event log", () => {
  it("numbers events per session in the database, in order, across batches and writers; a seq never repeats", async () => {
    const la = new PgEventLog(a.pool, 1000);
    const lb = new PgEventLog(b.pool, 1000);
    const writes = Array.from({ length: 20 }, (_, i) => (i % 2 ? la : lb).append("s1", "r", [ev(`${i}.0`), ev(`${i}.1`), ev(`${i}.2`)]));
    const seqs = (await Promise.all(writes)).flat().sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const events = await la.readAfter("s1", 0);
    expect(events.map((e) => e.seq)).toEqual(seqs);
    // A batch stays contiguous and in its order.
    for (let i = 0; i < 60; i += 3) expect(events.slice(i, i + 3).map((e) => text(e).split(".")[1])).toEqual(["0", "1", "2"]);
    // A "restart" (a new log object, a new pool) continues the numbering.
    const c = await PostgresSessionStore.open(url, log);
    cleanup.push(() => c.close());
    expect(await new PgEventLog(c.pool, 1000).append("s1", "r2", [ev("after restart")])).toEqual([61]);
    expect(await la.lastSeq("s1")).toBe(61);
    expect(await la.lastSeq("none")).toBe(0);
  });

  it("keeps the last SKEIN_EVENT_BUFFER events; an evicted or future cursor gets OUT_OF_RANGE reload", async () => {
    const log5 = new PgEventLog(a.pool, 5);
    for (let i = 1; i <= 12; i++) await log5.append("s1", "r", [ev(String(i))]);
    expect((await log5.readAfter("s1", 7)).map(text)).toEqual(["8", "9", "10", "11", "12"]);
    expect(await log5.readAfter("s1", 12)).toEqual([]);
    await expect(log5.readAfter("s1", 6)).rejects.toThrow(/no longer buffered \(oldest kept: 8\).*reload/);
    await expect(log5.readAfter("s1", 6)).rejects.toBeInstanceOf(OutOfRangeError);
    await expect(log5.readAfter("s1", 13)).rejects.toThrow(/ahead of session s1's last event 12/);
    expect(await log5.readAfter("fresh", 0)).toEqual([]);
    // Deleting the session's events keeps its counter: the next seq is 13, and cursor 12 is still valid.
    await log5.forget("s1");
    expect(await log5.readAfter("s1", 12)).toEqual([]);
    await expect(log5.readAfter("s1", 3)).rejects.toBeInstanceOf(OutOfRangeError);
    expect(await log5.append("s1", "r", [ev("13")])).toEqual([13]);
  });

  it("refuses an append whose lease was taken over", async () => {
    const leases = new RunLeases(a.pool, 1);
    const { lease } = await leases.acquire("s1", "r1", "A");
    const events = new PgEventLog(a.pool, 100);
    expect(await events.append("s1", "r1", [ev("x")], lease)).toEqual([1]);
    await sleep(10);
    await new RunLeases(b.pool, 10_000).acquire("s1", "r2", "B");
    await expect(events.append("s1", "r1", [ev("late")], lease)).rejects.toBeInstanceOf(LeaseLostError);
    expect((await events.readAfter("s1", 0)).map(text)).toEqual(["x"]);
  });
});

describe("following events from another replica", () => {
  it("a watcher on B sees A's events as they happen, once each and in order", async () => {
    const follower = new EventFollower(new PgEventLog(b.pool, 1000), await listener("watch-b"), 60_000);
    const writer = new PgEventLog(a.pool, 1000);
    const got: string[] = [];
    const ac = new AbortController();
    const done = follower.follow("s1", 0, (e) => {
      got.push(text(e));
      if (got.length === 30) ac.abort();
    }, ac.signal);
    for (let i = 0; i < 10; i++) {
      await writer.append("s1", "r", [ev(`${i}a`), ev(`${i}b`), ev(`${i}c`)]);
      await sleep(5);
    }
    expect(await done).toBe(30);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => [`${i}a`, `${i}b`, `${i}c`]).flat());
  });

  it("the LISTEN connection reconnects after the server drops it and the watcher catches up without gap or repeat", async () => {
    const l = await listener("watch-drop");
    // No fallback poll within the test: only notifications and the reconnect catch-up can deliver.
    const follower = new EventFollower(new PgEventLog(b.pool, 1000), l, 600_000);
    const writer = new PgEventLog(a.pool, 1000);
    const got: number[] = [];
    const ac = new AbortController();
    const done = follower.follow("s1", 0, (e) => {
      got.push(e.seq);
      if (e.seq === 40) ac.abort();
    }, ac.signal);
    for (let i = 0; i < 20; i++) await writer.append("s1", "r", [ev(String(i))]);
    await expect.poll(() => got.length).toBe(20);
    expect(await cluster.terminateConnections(dbName, "watch-drop")).toBe(1);
    // Written while the listener is down: those notifications are lost.
    for (let i = 20; i < 40; i++) await writer.append("s1", "r", [ev(String(i))]);
    expect(await done).toBe(40);
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(l.connections).toBeGreaterThanOrEqual(2);
  });

  it("a watcher resuming after_seq on another replica gets the rest exactly once", async () => {
    const writer = new PgEventLog(a.pool, 1000);
    for (let i = 1; i <= 10; i++) await writer.append("s1", "r", [ev(String(i))]);
    const onB = new EventFollower(new PgEventLog(b.pool, 1000), await listener("b"), 600_000);
    const ac = new AbortController();
    const got: string[] = [];
    const done = onB.follow("s1", 6, (e) => {
      got.push(text(e));
      if (e.seq === 12) ac.abort();
    }, ac.signal);
    await writer.append("s1", "r", [ev("11"), ev("12")]);
    await done;
    expect(got).toEqual(["7", "8", "9", "10", "11", "12"]);
  });

  it("an evicted cursor rejects with OUT_OF_RANGE", async () => {
    const writer = new PgEventLog(a.pool, 3);
    for (let i = 1; i <= 10; i++) await writer.append("s1", "r", [ev(String(i))]);
    const f = new EventFollower(new PgEventLog(b.pool, 3), await listener("b2"), 600_000);
    await expect(f.follow("s1", 2, () => undefined, new AbortController().signal)).rejects.toBeInstanceOf(OutOfRangeError);
  });
});

describe("cancel from another replica", () => {
  it("reaches the run's replica through the notification", async () => {
    const leasesA = new RunLeases(a.pool, 10_000);
    // Poll far beyond the test: only the notification can deliver.
    const signals = new CancelSignals(leasesA, await listener("cancel-a"), "A", 600_000);
    cleanup.push(() => signals.close());
    const { lease } = await leasesA.acquire("s1", "r1", "A");
    let cancelled = 0;
    signals.watch(lease, () => cancelled++);
    expect(await new RunLeases(b.pool, 10_000).requestCancel("s1", "other-request")).toBeUndefined();
    expect(await new RunLeases(b.pool, 10_000).requestCancel("s1")).toBe("r1");
    await expect.poll(() => cancelled, { timeout: 1_000 }).toBe(1);
    expect(await leasesA.renew(lease)).toEqual({ held: true, cancelRequested: true });
  });

  it("lands within a second through the cancel_requested poll when the notification is lost", async () => {
    const leasesA = new RunLeases(a.pool, 10_000);
    const l = await listener("cancel-lost");
    const signals = new CancelSignals(leasesA, l, "A", 300);
    cleanup.push(() => signals.close());
    const { lease } = await leasesA.acquire("s1", "r1", "A");
    let cancelledAt = 0;
    signals.watch(lease, () => (cancelledAt = Date.now()));
    // The listener is closed: no notification reaches replica A any more.
    await l.close();
    const asked = Date.now();
    await new RunLeases(b.pool, 10_000).requestCancel("s1", "r1");
    await expect.poll(() => cancelledAt, { timeout: 2_000 }).toBeGreaterThan(0);
    expect(cancelledAt - asked).toBeLessThan(1_000);
  });
});

describe("sessions across replicas", () => {
  it("a session created on A is read, listed and written on B", async () => {
    const s = await a.create(defaultMetadata("/w", "from A"));
    expect((await b.info(s.id))!.metadata.description).toBe("from A");
    expect((await b.list(10, "")).sessions.map((x) => x.id)).toEqual([s.id]);
  });
});
