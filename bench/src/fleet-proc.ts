import { readdirSync, readFileSync } from "node:fs";

/** One row of the process table, from /proc/<pid>/stat. */
export interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly sid: number;
  readonly state: string;
  /** utime + stime, clock ticks (USER_HZ, 100 on Linux). */
  readonly cpuTicks: number;
  /** cutime + cstime: CPU of reaped children (a heartbeat loop's date, mv, sleep). */
  readonly childTicks: number;
}

export const TICK_MS = 10;

export function processTable(): Map<number, Proc> {
  const out = new Map<number, Proc>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${e}/stat`, "utf8");
    } catch {
      continue;
    }
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // f[n] is field n + 3 of proc(5).
    out.set(Number(e), {
      pid: Number(e),
      state: f[0]!,
      ppid: Number(f[1]),
      sid: Number(f[3]),
      cpuTicks: Number(f[11]) + Number(f[12]),
      childTicks: Number(f[13]) + Number(f[14]),
    });
  }
  return out;
}

/** Live (non-zombie) processes that are `roots` or descend from them. */
export function treeOf(table: Map<number, Proc>, roots: Iterable<number>): Proc[] {
  const children = new Map<number, number[]>();
  for (const p of table.values()) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const out: Proc[] = [];
  const stack = [...roots];
  const seen = new Set<number>();
  while (stack.length) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const p = table.get(pid);
    if (!p) continue;
    if (p.state !== "Z") out.push(p);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}
