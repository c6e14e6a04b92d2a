import { readdirSync, readFileSync } from "node:fs";

/** Read from outside through /proc: what a process costs, whatever it reports itself. */

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of all the process's threads so far, ms (10 ms resolution). */
export function cpuMs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Field n of proc(5) is rest[n - 3]; the command name may hold spaces.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
}

/** CPU of several processes over `work`, ms each, in the order given. */
export async function cpuDuring<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ result: T; cpu: number[] }> {
  const before = pids.map(cpuMs);
  const result = await work();
  return { result, cpu: pids.map((p, i) => cpuMs(p) - before[i]!) };
}

/** VmRSS and VmHWM (peak RSS), bytes. */
export function memory(pid: number): { rss: number; peakRss: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb("VmRSS"), peakRss: kb("VmHWM") };
}

export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** utime and stime (ms) of each thread of a process, summed by thread name (the main thread is the one whose tid is the pid: "main"). */
export function cpuByThread(pid: number): Map<string, { user: number; sys: number }> {
  const out = new Map<string, { user: number; sys: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = Number(tid) === pid ? "main" : text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")).replace(/\d+$/, "").trim();
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const t = out.get(name) ?? { user: 0, sys: 0 };
    t.user += Number(rest[11]) * TICK_MS;
    t.sys += Number(rest[12]) * TICK_MS;
    out.set(name, t);
  }
  return out;
}
