import { availableParallelism, loadavg } from "node:os";
import type { Table } from "./table.js";

/** CPU spent over measured replies (ms), summed over rounds. */
export interface CpuPerReply {
  /** Every session replica process (/proc). */
  service: number;
  /** The postmaster and its children (/proc). */
  database: number;
  /** This bench process: the fake provider and the gRPC clients. */
  bench: number;
  replies: number;
  seconds: number;
}

/** Replicas on paper: every machine's cores used to this fraction, leaving room for bursts. */
const UTILISATION = 0.75;
const REPLICA_CORES = 2;
const DATABASE_CORES = [2, 8] as const;
const REPLICAS = [1, 2, 4, 8, 16, 32] as const;

const per = (c: CpuPerReply, ms: number) => ms / c.replies;

/**
 * Issue 25 goal 4: how many replies/s N replicas on one PostgreSQL serve,
 * from the CPU per reply measured in the replies/s rounds, and a check of the
 * arithmetic against those rounds on this machine.
 */
export function capacityTables(cpu: { one: CpuPerReply; two: CpuPerReply }): Table[] {
  const s = per(cpu.one, cpu.one.service);
  const d = per(cpu.one, cpu.one.database);
  const replicaRate = (n: number) => (n * REPLICA_CORES * 1000 * UTILISATION) / s;
  const dbRate = (cores: number) => (cores * 1000 * UTILISATION) / d;
  const cores = availableParallelism();
  const check = (label: string, c: CpuPerReply): (string | number)[] => {
    const total = per(c, c.service + c.database + c.bench);
    const busy = (c.service + c.database + c.bench) / 1000 / c.seconds;
    const measured = c.replies / c.seconds;
    const predicted = (cores * 1000) / total;
    return [label, measured, `${per(c, c.service).toFixed(2)} / ${per(c, c.database).toFixed(2)} / ${per(c, c.bench).toFixed(2)}`, `${busy.toFixed(2)} of ${cores}`, predicted, `${((measured / predicted) * 100).toFixed(0)} %`];
  };
  return [
    {
      title: `session-pg: replicas on paper — replies/s of N replicas (${REPLICA_CORES} cores each) on one PostgreSQL`,
      columns: ["replicas", "replicas can serve", ...DATABASE_CORES.map((c) => `served, database on ${c} cores`), ...DATABASE_CORES.map((c) => `limit (${c}-core database)`)],
      rows: REPLICAS.map((n) => [n, replicaRate(n), ...DATABASE_CORES.map((c) => Math.min(replicaRate(n), dbRate(c))), ...DATABASE_CORES.map((c) => (replicaRate(n) <= dbRate(c) ? "replicas" : "database"))]),
      notes: [
        `from the one-replica rounds above (3-delta answers, ${cpu.one.replies} replies): service ${s.toFixed(2)} ms CPU per reply, PostgreSQL ${d.toFixed(2)} ms CPU per reply (postmaster and children, /proc); the provider and clients run elsewhere`,
        `every machine's cores used to ${UTILISATION * 100} %; a database of ${DATABASE_CORES.map((c) => `${c} cores serves ${dbRate(c).toFixed(0)} replies/s`).join(", ")}: the database becomes the limit from ${DATABASE_CORES.map((c) => `${(dbRate(c) / replicaRate(1)).toFixed(1)} replicas (${c} cores)`).join(", ")} on`,
        "CPU only: assumes the database's disk (fsync off here) and the network keep up; real answers are longer than 3 deltas (more event rows per reply: more database CPU)",
      ],
    },
    {
      title: "session-pg: the arithmetic checked against this machine's rounds (every process on the same cores)",
      columns: ["round", "measured replies/s", "CPU ms per reply: services / PostgreSQL / bench (provider and clients)", "cores busy", "replies/s if all cores were busy", "measured / that"],
      rows: [check("one replica (A)", cpu.one), check("two replicas (A and B)", cpu.two)],
      notes: [
        "\"replies/s if all cores were busy\" = cores × 1,000 ms / (all CPU per reply): what the CPU accounting predicts; measured well below it means the round was not CPU-bound (16 replies in flight, latency between processes)",
        `load average (1 min) ${loadavg()[0]!.toFixed(1)} when printed: other people's work shares these cores`,
      ],
    },
  ];
}
