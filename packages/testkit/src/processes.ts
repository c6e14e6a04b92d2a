import { readdirSync, readFileSync } from "node:fs";
import { isLive, readProcStatSync } from "@skein/host";

/**
 * Finding a test's own processes in /proc. `npm test` runs several test files
 * at once, each with its own services and extension processes, so a scan of
 * every process on the machine by command line sees the other files' ones too.
 * A test counts the processes below its own service (descendants: the parent
 * chain in /proc/<pid>/stat reaches the service's pid), or, for processes that
 * have left that tree (orphans of a killed service, reparented to init), the
 * ones carrying a marker no other worker uses (testMarker()).
 */

/** The arguments of a process (/proc/<pid>/cmdline), or undefined once it is gone. */
function argumentsOf(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    // NUL-terminated arguments; a process that rewrote its title may leave off the last NUL.
    return (text.endsWith("\0") ? text.slice(0, -1) : text).split("\0");
  } catch {
    return undefined;
  }
}

/** The parent of every live process, read once (one snapshot, so a chain is walked on consistent data). */
function liveParents(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readProcStatSync(Number(entry));
    if (isLive(s)) parents.set(s.pid, s.ppid);
  }
  return parents;
}

/** Live processes below `root` (its children, their children, …), not `root` itself. */
export function descendantsOf(root: number): number[] {
  const parents = liveParents();
  const below = (pid: number): boolean => {
    // Bounded: a parent chain ends at pid 1 (or 0) within the number of processes.
    for (let p = parents.get(pid), hops = 0; p !== undefined && hops <= parents.size; p = parents.get(p), hops++) {
      if (p === root) return true;
    }
    return false;
  };
  return [...parents.keys()].filter(below);
}

/**
 * Whether a process has `value` as an argument: whole (an extension's entry
 * file), or after an `=` (`--skein-test=<marker>`); never as a mere prefix, so
 * marker 1 is not marker 12.
 */
function hasArgument(pid: number, value: string): boolean {
  return argumentsOf(pid)?.some((a) => a === value || a.endsWith(`=${value}`)) ?? false;
}

/** Live processes below `root` with `value` as an argument (see hasArgument): e.g. a service's extension processes. */
export function processesUnder(root: number, value: string): number[] {
  return descendantsOf(root).filter((pid) => hasArgument(pid, value));
}

/** A string only testMarker() makes: processesMarked() scans the whole machine, so it takes nothing less unique. */
export type TestMarker = string & { readonly __testMarker: unique symbol };

let markers = 0;

/**
 * A marker no other test file running at the same time uses (it names this
 * worker's pid) nor another call in this file: pass it as an argument of a
 * process the test starts (whole, or as `--flag=<marker>`), then find that
 * process with processesMarked().
 */
export function testMarker(prefix: string): TestMarker {
  return `${prefix}-${process.pid}-${++markers}` as TestMarker;
}

/** Live processes anywhere with `marker` as an argument (see hasArgument), also those that have left the test's process tree. */
export function processesMarked(marker: TestMarker): number[] {
  return [...liveParents().keys()].filter((pid) => hasArgument(pid, marker));
}
