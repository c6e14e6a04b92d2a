import { performance } from "node:perf_hooks";
import pg from "pg";
import pino from "pino";
import { startPostgres } from "@skein/testkit";
import { replicaTables } from "./session-pg-replicas.js";
import type { Table } from "./table.js";

/**
 * The PostgreSQL cluster primitives on a throw-away local cluster (fsync off:
 * this measures the round trips and the signalling, not the disk). Two pools
 * stand for two replicas. The rows through the real replicas (replies/s, delay
 * between replicas, work per reply, kill -9) are in session-pg-replicas.ts.
 */
const serviceDist = new URL("../../services/session/dist/", import.meta.url);
const load = <T>(p: string) => import(new URL(p, serviceDist).href) as Promise<T>;

interface EventLog {
  append(sessionId: string, requestId: string, events: readonly Buffer[]): Promise<number[]>;
}
interface Follower {
  follow(sessionId: string, afterSeq: number, onEvent: (e: { seq: number; event: Buffer }) => void, signal: AbortSignal): Promise<number>;
}
interface Listener {
  start(): Promise<void>;
  close(): Promise<void>;
}
interface Leases {
  acquire(sessionId: string, requestId: string, owner: string): Promise<{ lease: unknown }>;
  release(lease: unknown): Promise<boolean>;
}
interface Mods {
  store: { PostgresSessionStore: { open(url: string, log: unknown, opts?: { poolSize?: number }): Promise<{ pool: pg.Pool; close(): Promise<void> }> } };
  events: { PgEventLog: new (pool: pg.Pool, window: number) => EventLog; EVENTS_CHANNEL: string };
  listener: { PgListener: new (url: string, log: unknown, opts: { channels: string[]; applicationName: string }) => Listener };
  follower: { EventFollower: new (log: EventLog, listener: Listener, pollMs?: number) => Follower };
  leases: { RunLeases: new (pool: pg.Pool, leaseMs: number) => Leases };
}

const EVENTS = 2_000;
const BATCH = 10;
const LEASES = 500;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

export async function run(): Promise<Table[]> {
  return [...(await replicaTables()), ...(await primitiveTables())];
}

async function primitiveTables(): Promise<Table[]> {
  const mods: Mods = {
    store: await import("@skein/goose-sessions/postgres"),
    events: await load("cluster/postgres/event-log.js"),
    listener: await load("cluster/postgres/listener.js"),
    follower: await load("cluster/postgres/follower.js"),
    leases: await load("cluster/postgres/run-lease.js"),
  };
  const cluster = await startPostgres();
  const log = pino({ level: "silent" });
  try {
    const url = await cluster.createDatabase();
    const a = await mods.store.PostgresSessionStore.open(url, log, { poolSize: 4 });
    const b = await mods.store.PostgresSessionStore.open(url, log, { poolSize: 4 });
    const listener = new mods.listener.PgListener(url, log, { channels: [mods.events.EVENTS_CHANNEL], applicationName: "bench-b" });
    await listener.start();
    try {
      const delay = await crossReplicaDelay(mods, a.pool, b.pool, listener);
      const trips = await roundTrips(mods, a.pool);
      const leases = await leaseRate(mods, a.pool);
      return [
        {
          title: "session-pg: event on replica A → watcher on replica B (LISTEN/NOTIFY, then a read)",
          columns: ["appends", "events", "p50 ms", "p99 ms", "events/s written"],
          rows: delay.map((d) => [d.label, d.events, d.p50, d.p99, d.rate]),
          notes: ["one local PostgreSQL 15, fsync off; A and B are two pools in one process (same clock); a batch is one transaction"],
        },
        {
          title: "session-pg: database work per event append",
          columns: ["append", "round trips", "rows inserted", "rows updated", "rows deleted (window trim)"],
          rows: trips,
          notes: ["counted from the client's queries and pg_stat_database, SKEIN_EVENT_BUFFER=512, after the window is full"],
        },
        {
          title: "session-pg: run leases",
          columns: ["operation", "count", "per second", "p50 ms", "p99 ms"],
          rows: [["acquire + release (one replica, sequential)", LEASES, leases.rate, leases.p50, leases.p99]],
        },
      ];
    } finally {
      await listener.close();
      await a.close();
      await b.close();
    }
  } finally {
    await cluster.stop();
  }
}

async function crossReplicaDelay(mods: Mods, poolA: pg.Pool, poolB: pg.Pool, listener: Listener) {
  // A window holding every event: this measures the delay, and a follower on a loaded machine may fall
  // behind a writer that needs one round trip per append (a cursor out of the window is OUT_OF_RANGE).
  const writer = new mods.events.PgEventLog(poolA, 2 * EVENTS);
  const follower = new mods.follower.EventFollower(new mods.events.PgEventLog(poolB, 2 * EVENTS), listener, 60_000);
  const out = [];
  for (const batch of [1, BATCH]) {
    const session = `delay_${batch}`;
    const delays: number[] = [];
    const ac = new AbortController();
    const followed = follower.follow(session, 0, (e) => {
      delays.push(performance.now() - Number(e.event.toString()));
      if (delays.length === EVENTS) ac.abort();
    }, ac.signal);
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i += batch) {
      const now = String(performance.now());
      await writer.append(session, "r", Array.from({ length: batch }, () => Buffer.from(now)));
    }
    const rate = EVENTS / ((performance.now() - t0) / 1000);
    await followed;
    out.push({ label: batch === 1 ? "one event each" : `batches of ${batch}`, events: EVENTS, p50: pct(delays, 50), p99: pct(delays, 99), rate });
  }
  return out;
}

async function roundTrips(mods: Mods, pool: pg.Pool): Promise<(string | number)[][]> {
  const log = new mods.events.PgEventLog(pool, 512);
  const session = "trips";
  await log.append(session, "r", Array.from({ length: 600 }, () => Buffer.from("x")));
  const stats = async () => {
    const c = await pool.connect();
    try {
      await c.query("SELECT pg_stat_force_next_flush()");
      const r = await c.query<{ i: number; u: number; d: number }>(
        "SELECT tup_inserted AS i, tup_updated AS u, tup_deleted AS d FROM pg_stat_database WHERE datname = current_database()",
      );
      return r.rows[0]!;
    } finally {
      c.release();
    }
  };
  const rows: (string | number)[][] = [];
  for (const batch of [1, BATCH]) {
    const N = 100;
    let queries = 0;
    const original = pg.Client.prototype.query;
    const before = await stats();
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      queries++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    try {
      for (let i = 0; i < N; i++) await log.append(session, "r", Array.from({ length: batch }, () => Buffer.from("x")));
    } finally {
      pg.Client.prototype.query = original;
    }
    const after = await stats();
    rows.push([batch === 1 ? "1 event" : `${batch} events`, queries / N, (Number(after.i) - Number(before.i)) / N, (Number(after.u) - Number(before.u)) / N, (Number(after.d) - Number(before.d)) / N]);
  }
  return rows;
}

async function leaseRate(mods: Mods, pool: pg.Pool) {
  const leases = new mods.leases.RunLeases(pool, 10_000);
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < LEASES; i++) {
    const t = performance.now();
    const { lease } = await leases.acquire(`lease_${i % 20}`, `r${i}`, "A");
    await leases.release(lease);
    times.push(performance.now() - t);
  }
  return { rate: LEASES / ((performance.now() - t0) / 1000), p50: pct(times, 50), p99: pct(times, 99) };
}
