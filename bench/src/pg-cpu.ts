import { readdirSync, readFileSync } from "node:fs";
import { cpuMs } from "./proc-usage.js";

/**
 * PostgreSQL's CPU from /proc: the postmaster and every process it forked
 * (backends, WAL writer, checkpointer, autovacuum …). A child that exits
 * between two readings takes its CPU with it: the replicas' pooled
 * connections live for the whole run, so their backends are counted.
 */

/** The postmaster of a backend (its parent). */
export function postmasterOf(backendPid: number): number {
  const status = readFileSync(`/proc/${backendPid}/status`, "utf8");
  return Number(/^PPid:\s+(\d+)/m.exec(status)![1]);
}

/** CPU ms so far of the postmaster and its live children, by pid. */
export function clusterCpu(postmaster: number): Map<number, number> {
  const out = new Map<number, number>([[postmaster, cpuMs(postmaster)]]);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === postmaster) out.set(Number(entry), cpuMs(Number(entry)));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** CPU ms PostgreSQL spent between two clusterCpu() readings (children born in between count from zero). */
export function clusterCpuSince(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let ms = 0;
  for (const [pid, now] of after) ms += now - (before.get(pid) ?? 0);
  return ms;
}
