import { closeSync, openSync, readdirSync, readSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

/**
 * Linux /proc facts. A pid is only trusted together with its start time
 * (field 22 of /proc/<pid>/stat, clock ticks after boot, unchanged by exec),
 * so a pid the kernel has reused for another program is never taken for ours.
 */
export interface ProcStat {
  readonly pid: number;
  /** The command name, at most 15 bytes ("tmux: server" for a tmux server). */
  readonly comm: string;
  /** R, S, D, Z (zombie), T, … */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** Device number of the controlling terminal; 0 once it has none (its terminal was hung up: a pane closed). */
  readonly ttyNr: number;
  readonly startTicks: number;
}

/** Parses /proc/<pid>/stat; the command name (field 2) may hold spaces and ')', so fields count from the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open === -1 || close === -1) return undefined;
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const rest = text.slice(close + 2).split(" ");
  const stat = {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? "",
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    session: Number(rest[3]),
    ttyNr: Number(rest[4]),
    startTicks: Number(rest[19]),
  };
  return stat.state && [stat.pid, stat.ppid, stat.pgrp, stat.session, stat.ttyNr, stat.startTicks].every(Number.isInteger) ? stat : undefined;
}

export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  return readFile(`/proc/${pid}/stat`, "utf8").then(parseProcStat, () => undefined);
}

/** A stat line is a few hundred bytes (the command name is at most 64 with its escapes); one read gets it whole. */
const statBuffer = Buffer.alloc(4096);

/**
 * Synchronous on purpose: procfs is generated in memory and never waits on a
 * disk, and it is read for every agent every second (one open, read, close).
 */
export function readProcStatSync(pid: number): ProcStat | undefined {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/stat`, "r");
  } catch {
    return undefined;
  }
  try {
    return parseProcStat(statBuffer.toString("utf8", 0, readSync(fd, statBuffer, 0, statBuffer.length, 0)));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Exists and has not ended: not a zombie (waiting to be reaped) nor dead (X: being reaped, its /proc entry about to go). */
export function isLive(stat: ProcStat | undefined): stat is ProcStat {
  return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
}

/** The process still holds its pid: it is live and started when it did before. */
export function isSameProcess(stat: ProcStat | undefined, expectedStartTicks: number): stat is ProcStat {
  return isLive(stat) && stat.startTicks === expectedStartTicks;
}

/** Start time of a live process, or undefined when it is gone. */
export function liveStartTicks(pid: number): number | undefined {
  const s = readProcStatSync(pid);
  return isLive(s) ? s.startTicks : undefined;
}

/** Live processes, synchronously: used while ending process groups. */
function liveProcessesSync(where: (s: ProcStat) => boolean): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readProcStatSync(Number(entry));
    if (isLive(s) && where(s)) out.push(s.pid);
  }
  return out;
}

/** Live processes, without blocking the event loop. */
async function liveProcesses(where: (s: ProcStat) => boolean): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = await readProcStat(Number(entry));
    if (isLive(s) && where(s)) out.push(s.pid);
  }
  return out;
}

/** Pids of the live members of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return liveProcessesSync((s) => s.pgrp === pgid);
}

/** Every live process of a session or process group led by `sid` (all a pane started, unless it escaped with setsid). */
export function sessionMembers(sid: number): Promise<number[]> {
  return liveProcesses((s) => s.session === sid || s.pgrp === sid);
}

/** Sends a signal to one process; false when it is gone or not ours to signal. */
export function signalProcess(pid: number, sig: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pid) || pid <= 1) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Signals a whole process group; false when it no longer exists or none of its
 * members may be signalled by us. Never signals groups 0 or 1: kill(-0) and
 * kill(-1) would mean our own group and every process we may signal.
 */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}
