import { readFileSync, readdirSync } from "node:fs";

/**
 * Linux /proc facts used to end process groups safely: a pid is only trusted
 * together with its start time (field 22 of /proc/<pid>/stat, clock ticks since
 * boot), so a pid the kernel has reused for another program is never signalled.
 */
export interface ProcStat {
  pid: number;
  pgrp: number;
  state: string;
  startTime: string;
}

export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may itself contain spaces or ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const state = rest[0];
  const pgrp = Number(rest[2]);
  const startTime = rest[19];
  if (state === undefined || startTime === undefined || !Number.isInteger(pgrp)) return undefined;
  return { pid, state, pgrp, startTime };
}

/** Start time of a live (non-zombie) process, or undefined when it is gone. */
export function liveStartTime(pid: number): string | undefined {
  const s = procStat(pid);
  return s && s.state !== "Z" ? s.startTime : undefined;
}

/** Pids of the live (non-zombie) members of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.pgrp === pgid && s.state !== "Z") out.push(s.pid);
  }
  return out;
}

/**
 * Signals a whole process group; false when it no longer exists, or when none
 * of its members may be signalled by us (EPERM): either way there is nothing
 * more this process can do about it, and ending an extension must not throw.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  // kill(-0) and kill(-1) would mean our own group and every process we may signal.
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}
