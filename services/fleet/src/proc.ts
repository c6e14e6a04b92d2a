import { readdir, readFile } from "node:fs/promises";

/** The fields of /proc/<pid>/stat the fleet needs. */
export interface ProcStat {
  readonly pid: number;
  /** R, S, D, Z (zombie), T, … */
  readonly state: string;
  readonly pgrp: number;
  readonly session: number;
  /** Field 22: clock ticks after boot at which the process started; unchanged by exec. */
  readonly startTicks: number;
}

/** Parses /proc/<pid>/stat; the command name (field 2) may hold spaces and ')' so fields count from the last ')'. */
export function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  const open = text.indexOf("(");
  if (close === -1 || open === -1) return undefined;
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const startTicks = Number(rest[19]);
  if (!Number.isFinite(startTicks)) return undefined;
  return { pid: Number(text.slice(0, open).trim()), state: rest[0]!, pgrp: Number(rest[2]), session: Number(rest[3]), startTicks };
}

export async function readProcStat(pid: number): Promise<ProcStat | undefined> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * The agent's process still holds its pid: it exists, is not a zombie, and
 * started when it did at launch. A pid reused by another process fails the
 * last test.
 */
export function isSameProcess(stat: ProcStat | undefined, expectedStartTicks: number): boolean {
  return stat !== undefined && stat.state !== "Z" && stat.startTicks === expectedStartTicks;
}

/** Every live process of a session (sid), i.e. all a pane started unless it escaped with setsid. */
export async function sessionMembers(sid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readProcStat(Number(entry));
    if (stat && stat.state !== "Z" && (stat.session === sid || stat.pgrp === sid)) out.push(stat.pid);
  }
  return out;
}

/** Sends a signal, ignoring processes that are already gone. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/** Signals the process group led by `pgid` (the pane's process) and every process of its session. */
export async function signalAgentProcesses(panePid: number, sig: NodeJS.Signals): Promise<number[]> {
  signal(-panePid, sig);
  const members = await sessionMembers(panePid);
  for (const pid of members) signal(pid, sig);
  return members;
}
