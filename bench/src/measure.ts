import { readdirSync, readFileSync } from "node:fs";
import { isLive, readProcStatSync } from "@skein/host";

/** Runs `work` over the items, at most `width` at a time. */
export async function pool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Heap in use after full collections (node runs with --expose-gc for npm run bench). */
export function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Live processes whose command line carries `marker`. */
export function countProcesses(marker: string): number {
  let n = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || !isLive(readProcStatSync(Number(entry)))) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}
