import { performance } from "node:perf_hooks";
import { loadavg, tmpdir } from "node:os";
import pg from "pg";
import { type ClientReadableStream } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, openaiText, startPostgres, startReplicaCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { pool } from "./measure.js";
import { clusterCpu, clusterCpuSince, postmasterOf } from "./pg-cpu.js";
import { cpuMs } from "./proc-usage.js";
import { capacityTables, type CpuPerReply } from "./replica-capacity.js";
import { events, reply, type Client, type Ev } from "./replica-calls.js";
import { PACED_DELTAS, PACED_REPLIES, pacedRoundTrips } from "./session-pg-paced.js";
import { quantile } from "./stats.js";
import type { Table } from "./table.js";

/**
 * Issue 11's rows through the real services: two session service processes
 * (SKEIN_SESSION_STORE=postgres) on one throw-away PostgreSQL 15 (fsync off),
 * the fake provider and the clients in this process. Database work is read
 * from pg_stat_statements (loaded for this cluster), which counts every
 * statement a replica sends, BEGIN/COMMIT/NOTIFY included: one call is one
 * round trip. track=top: statements run inside the server (foreign-key checks
 * of an insert) are not round trips (track=all, before issue 25, counted them).
 */
const LEASE_MS = 2_000;
const SESSIONS = 32;
const IN_FLIGHT = 16;
const REPLIES = 240;
const DELAY_REPLIES = 3;
const DELTAS = 150;
const TRIP_REPLIES = 40;
const KILLS = 3;
const CANCELS = 10;


export async function replicaTables(): Promise<Table[]> {
  const load0 = loadavg()[0]!;
  const postgres = await startPostgres({ settings: { shared_preload_libraries: "pg_stat_statements", "pg_stat_statements.track": "top", "pg_stat_statements.track_utility": "on" } });
  try {
    const c = await startReplicaCluster({ postgres, replicas: 2, leaseMs: LEASE_MS, env: { SKEIN_LOG_LEVEL: "info" } });
    try {
      const [a, b] = c.replicas as [SessionReplica, SessionReplica];
      process.stderr.write("[bench]   session-pg: replies/s…\n");
      const rate = await repliesPerSecond(c, a, b);
      process.stderr.write("[bench]   session-pg: cross-replica delay…\n");
      const delay = await watcherDelay(c, a, b);
      process.stderr.write("[bench]   session-pg: database work per reply…\n");
      const work = await databaseWork(c, postgres.url(), a);
      process.stderr.write("[bench]   session-pg: CancelReply on B → run on A ends…\n");
      const cancels = await cancelAcross(c, a, b);
      process.stderr.write("[bench]   session-pg: kill -9 → next Reply…\n");
      const kills = await killToNextReply(c, a, b);
      const load = `load average (1 min) ${load0.toFixed(1)} at the start of the section, ${loadavg()[0]!.toFixed(1)} at the end`;
      return [
        {
          title: "session-pg: replies/s, one replica vs two on one database (real service processes)",
          columns: ["replicas serving", "replies", "seconds", "replies/s"],
          rows: [...rate.rows, ["ratio two / one", "", "", `${rate.ratio.toFixed(2)}×`]],
          notes: [`${SESSIONS} sessions, ${IN_FLIGHT} replies in flight, a 3-delta text answer each; one/two alternated twice, totals per mode; both replicas run all along (one idle in the one-replica rounds); 2 cores shared by every process`, load],
        },
        ...capacityTables(rate.cpu),
        {
          title: "session-pg: delay from an event on replica A to watchers (real services)",
          columns: ["watcher", "events", "p50 ms", "p99 ms"],
          rows: delay,
          notes: [`${DELAY_REPLIES} replies of ${DELTAS} text deltas 5 ms apart on A; delay = when the watcher receives seq n − when A's own Reply client receives seq n (one clock, this process)`],
        },
        {
          title: "session-pg: database work per reply (pg_stat_statements)",
          columns: ["measure", "per reply"],
          rows: work.rows,
          notes: work.notes,
        },
        {
          title: "session-pg: CancelReply on replica B → the run on replica A ends cancelled",
          columns: ["cancels", "p50 ms", "max ms"],
          rows: [[cancels.length, quantile(cancels, 0.5), Math.max(...cancels)]],
          notes: ["from sending CancelReply to B until A's Reply client receives finished{cancelled}; the provider holds the answer, so only the cancel ends the run (the contract: within 1 s)"],
        },
        {
          title: "session-pg: kill -9 of the run's replica → the session accepts a new Reply on the other",
          columns: ["SKEIN_RUN_LEASE_MS", "kills", "min s", "median s", "max s"],
          rows: [[LEASE_MS, kills.length, Math.min(...kills), quantile(kills, 0.5), Math.max(...kills)]],
          notes: ["Reply retried on B every 50 ms while it answers busy; the lease is renewed every lease/3 and swept every lease/4, so the wait lies between 2/3 and 5/4 of SKEIN_RUN_LEASE_MS"],
        },
      ];
    } finally {
      await c.close();
    }
  } finally {
    await postgres.stop();
  }
}

const zeroCpu = (): CpuPerReply => ({ service: 0, database: 0, bench: 0, replies: 0, seconds: 0 });
const create = async (client: Client) => (await call(client, client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }))).session!.id;

async function repliesPerSecond(c: ReplicaCluster, a: SessionReplica, b: SessionReplica) {
  c.model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  const ids: string[] = [];
  for (let i = 0; i < SESSIONS; i++) ids.push(await create(a.client));
  const postmaster = postmasterOf((await c.rows<{ pid: number }>("SELECT pg_backend_pid() AS pid"))[0]!.pid);
  const cpu = { one: zeroCpu(), two: zeroCpu() };
  const round = async (replicas: SessionReplica[], into?: CpuPerReply) => {
    const pg0 = clusterCpu(postmaster);
    const svc0 = [cpuMs(a.pid), cpuMs(b.pid)];
    const bench0 = process.cpuUsage();
    const jobs = Array.from({ length: REPLIES }, (_, i) => i);
    // One reply at a time per session (the one-run rule), IN_FLIGHT sessions at once.
    const perSession = ids.map((id, s) => ({ id, jobs: jobs.filter((j) => j % SESSIONS === s) }));
    const t0 = performance.now();
    await pool(perSession, IN_FLIGHT, async ({ id, jobs: mine }) => {
      for (const j of mine) {
        const err = await events(reply(replicas[j % replicas.length]!.client, id, `reply ${j}`));
        if (err) throw err;
      }
    });
    const secs = (performance.now() - t0) / 1000;
    if (into) {
      const bench = process.cpuUsage(bench0);
      into.service += cpuMs(a.pid) - svc0[0]! + cpuMs(b.pid) - svc0[1]!;
      into.database += clusterCpuSince(pg0, clusterCpu(postmaster));
      into.bench += (bench.user + bench.system) / 1000;
      into.replies += REPLIES;
      into.seconds += secs;
    }
    return secs;
  };
  await round([a, b]); // warm-up: connections, JIT, statement plans
  const secs = { one: 0, two: 0 };
  for (let r = 0; r < 2; r++) {
    secs.one += await round([a], cpu.one);
    secs.two += await round([a, b], cpu.two);
  }
  const one = (2 * REPLIES) / secs.one;
  const two = (2 * REPLIES) / secs.two;
  return {
    rows: [
      ["one (A)", 2 * REPLIES, secs.one, one],
      ["two (A and B, alternating)", 2 * REPLIES, secs.two, two],
    ],
    ratio: two / one,
    cpu,
  };
}

async function watcherDelay(c: ReplicaCluster, a: SessionReplica, b: SessionReplica): Promise<(string | number)[][]> {
  c.model.setFallback(() => ({ events: openaiText("x".repeat(DELTAS), { pieces: DELTAS }), delayMs: 5 }));
  const id = await create(a.client);
  const same: number[] = [];
  const other: number[] = [];
  let after = 0;
  for (let r = 0; r < DELAY_REPLIES; r++) {
    const at = { run: new Map<number, number>(), a: new Map<number, number>(), b: new Map<number, number>() };
    const watchers = (["a", "b"] as const).map((k) => {
      const stream = (k === "a" ? a : b).client.watchSession(pb.WatchSessionRequest.fromPartial({ sessionId: id, afterSeq: after })) as ClientReadableStream<Ev>;
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      void events(stream, (e) => {
        at[k].set(e.seq, performance.now());
        if (e.event?.$case === "finished") done();
      });
      return { stream, finished };
    });
    const err = await events(reply(a.client, id, `delay ${r}`), (e) => at.run.set(e.seq, performance.now()));
    if (err) throw err;
    await Promise.all(watchers.map((w) => w.finished));
    for (const w of watchers) (w.stream.on("error", () => undefined), w.stream.cancel());
    for (const [seq, t] of at.run) {
      const ta = at.a.get(seq);
      const tb = at.b.get(seq);
      if (ta !== undefined) same.push(ta - t);
      if (tb !== undefined) other.push(tb - t);
      after = Math.max(after, seq);
    }
  }
  return [
    ["on A (the run's replica)", same.length, quantile(same, 0.5), quantile(same, 0.99)],
    ["on B (another replica)", other.length, quantile(other, 0.5), quantile(other, 0.99)],
  ];
}

interface Snapshot {
  calls: number;
  rows: number;
  byQuery: Map<string, number>;
}

async function databaseWork(c: ReplicaCluster, adminUrl: string, a: SessionReplica) {
  c.model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  const admin = new pg.Client({ connectionString: adminUrl, application_name: "bench-stats" });
  await admin.connect();
  try {
    await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    const oid = (await admin.query<{ oid: number }>("SELECT oid FROM pg_database WHERE datname = $1", [c.databaseName])).rows[0]!.oid;
    const snap = async (): Promise<Snapshot> => {
      const r = await admin.query<{ query: string; calls: string; rows: string }>("SELECT query, calls, rows FROM pg_stat_statements WHERE dbid = $1", [oid]);
      const byQuery = new Map<string, number>();
      let calls = 0;
      let rows = 0;
      for (const q of r.rows) {
        calls += Number(q.calls);
        if (/^\s*(WITH\b[\s\S]*)?\b(INSERT|UPDATE|DELETE)\b/i.test(q.query)) rows += Number(q.rows);
        byQuery.set(q.query, (byQuery.get(q.query) ?? 0) + Number(q.calls));
      }
      return { calls, rows, byQuery };
    };
    const diff = (x: Snapshot, y: Snapshot) => ({
      calls: y.calls - x.calls,
      rows: y.rows - x.rows,
      byQuery: new Map([...y.byQuery].map(([q, n]) => [q, n - (x.byQuery.get(q) ?? 0)] as const).filter(([, n]) => n > 0)),
    });
    const id = await create(a.client);
    await events(reply(a.client, id, "warm up"));
    // What the replicas do with no reply at all (lease sweeps), subtracted at the same rate.
    const idle0 = await snap();
    const i0 = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const idle = diff(idle0, await snap());
    const idleSecs = (performance.now() - i0) / 1000;
    // The admin connection's own backend (these snapshots) is left out of PostgreSQL's CPU.
    const adminPid = (await admin.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const postmaster = postmasterOf(adminPid);
    const pgCpu = () => {
      const m = clusterCpu(postmaster);
      m.delete(adminPid);
      return m;
    };
    const before = await snap();
    const pg0 = pgCpu();
    const svc0 = cpuMs(a.pid);
    const t0 = performance.now();
    for (let i = 0; i < TRIP_REPLIES; i++) {
      const err = await events(reply(a.client, id, `trip ${i}`));
      if (err) throw err;
    }
    const secs = (performance.now() - t0) / 1000;
    const serviceCpu = (cpuMs(a.pid) - svc0) / TRIP_REPLIES;
    const databaseCpu = clusterCpuSince(pg0, pgCpu()) / TRIP_REPLIES;
    const work = diff(before, await snap());
    const bg = (n: number) => (n / idleSecs) * secs;
    const paced = await pacedRoundTrips(c, a, id, async () => (await snap()).calls, idle.calls / idleSecs);
    // A reload of the session's kept history is store.load(): its messages query (SELECT_MESSAGES in postgres-store.ts).
    const reloads = [...work.byQuery].filter(([q]) => /FROM messages WHERE session_id = \$1 ORDER BY created_timestamp/.test(q)).reduce((n, [, k]) => n + k, 0);
    const statement = (re: RegExp) => [...work.byQuery].filter(([q]) => re.test(q)).reduce((n, [q, k]) => n + k - bg(idle.byQuery.get(q) ?? 0), 0) / TRIP_REPLIES;
    const top = [...work.byQuery]
      .map(([q, n]) => [q, (n - bg(idle.byQuery.get(q) ?? 0)) / TRIP_REPLIES] as const)
      .filter(([, n]) => n >= 0.5)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 14);
    return {
      rows: [
        ["round trips (statements, BEGIN/COMMIT/LISTEN/NOTIFY included)", (work.calls - bg(idle.calls)) / TRIP_REPLIES],
        ["rows written (INSERT/UPDATE/DELETE rows)", (work.rows - bg(idle.rows)) / TRIP_REPLIES],
        ["  of the round trips: BEGIN / COMMIT", `${statement(/^\s*BEGIN/i).toFixed(1)} / ${statement(/^\s*COMMIT/i).toFixed(1)}`],
        ["  of the round trips: lease checks (SELECT … FROM session_runs … FOR SHARE)", statement(/FROM session_runs[\s\S]*FOR SHARE/i)],
        ["  of the round trips: all statements on session_runs (take, check, renew, release)", statement(/session_runs/i)],
        ["reloads of the session's kept history (store.load after the replica's own writes)", reloads / TRIP_REPLIES],
        [`round trips per reply of ${PACED_DELTAS} text deltas 10–20 ms apart, SKEIN_EVENT_BATCH_MS=20 (the default)`, paced.batched],
        [`  the same with SKEIN_EVENT_BATCH_MS=0 (only events published while an append is in flight share one)`, paced.unbatched],
        ["service CPU (ms, replica A, /proc)", serviceCpu],
        ["PostgreSQL CPU (ms, postmaster and its children, /proc)", databaseCpu],
        ...top.map(([q, n]) => [`· ${q.replace(/\s+/g, " ").slice(0, 90)}`, n]),
      ],
      notes: [
        `${TRIP_REPLIES} sequential replies on replica A, one session, a 3-delta text answer each (user message, assistant message, ~6 events)`,
        `paced rows: ${PACED_REPLIES} sequential replies each, replica A restarted with the setting; background subtracted the same way`,
        `background with no reply (lease sweeps of both replicas): ${(idle.calls / idleSecs).toFixed(1)} statements/s, subtracted at that rate`,
        "the · rows are the most frequent statements per reply",
        `load average (1 min) ${loadavg()[0]!.toFixed(1)} after these replies; CPU from /proc in 10 ms ticks over ${TRIP_REPLIES} replies (the snapshots' own backend left out)`,
      ],
    };
  } finally {
    await admin.end();
  }
}

async function cancelAcross(c: ReplicaCluster, a: SessionReplica, b: SessionReplica): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < CANCELS; k++) {
    let open!: () => void;
    const hold = new Promise<void>((r) => (open = r));
    c.model.setFallback(() => ({ events: openaiText("held until cancelled", { pieces: 4 }), holdAfter: 2, hold }));
    const id = await create(b.client);
    let started!: () => void;
    const first = new Promise<void>((r) => (started = r));
    let finishedAt = 0;
    const ended = events(reply(a.client, id, "cancel me"), (e) => {
      started();
      if (e.event?.$case === "finished") finishedAt = performance.now();
    });
    await first;
    const t0 = performance.now();
    await call(b.client, b.client.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: id }));
    const err = await ended;
    open();
    if (err || !finishedAt) throw err ?? new Error("the cancelled run sent no finished");
    out.push(finishedAt - t0);
  }
  c.model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  return out;
}

async function killToNextReply(c: ReplicaCluster, a: SessionReplica, b: SessionReplica): Promise<number[]> {
  const out: number[] = [];
  for (let k = 0; k < KILLS; k++) {
    let open!: () => void;
    const hold = new Promise<void>((r) => (open = r));
    c.model.setFallback(() => ({ events: openaiText("held forever", { pieces: 4 }), holdAfter: 2, hold }));
    const id = await create(b.client);
    const first = new Promise<void>((resolve) => void events(reply(a.client, id, "doomed"), resolve as () => void));
    await first;
    c.model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
    const t0 = performance.now();
    await a.kill();
    for (;;) {
      // Accepted = its first event arrives (a refused Reply ends with FAILED_PRECONDITION and no event).
      let acceptedAt: number | undefined;
      const err = await events(reply(b.client, id, "next"), () => (acceptedAt ??= performance.now()));
      if (acceptedAt !== undefined) {
        if (err) throw err;
        out.push((acceptedAt - t0) / 1000);
        break;
      }
      if (err?.code !== 9 /* FAILED_PRECONDITION: busy */) throw err ?? new Error("Reply ended without events");
      await new Promise((r) => setTimeout(r, 50));
    }
    open();
    await a.restart();
  }
  return out;
}
