import { endProcesses, isSameProcess, readProcStatSync, sessionMembers, signalGroup, signalProcess, waitUntil } from "@skein/host";
import { FailedPreconditionError } from "@skein/runtime";
import type { Logger } from "pino";
import type { Agent } from "./agent.js";
import type { PaneInfo } from "./tmux.js";

/** How often a stop looks whether the processes are gone and reaped. */
export const STOP_POLL_MS = 100;
/** After SIGKILL the kernel needs a moment to tear the processes down. */
const AFTER_KILL_WAIT_MS = 3_000;
/** How long the tmux server may take to reap a stopped agent's process, nudged each poll. */
const REAP_WAIT_MS = 5_000;

/** A process a stop must end: its pid, with the start time that proves it is still the one launched. */
export interface StopTarget {
  readonly pid: number;
  readonly startTicks: number;
}

/**
 * Ends the agent's processes (SIGTERM to each target's group and session,
 * SIGKILL after the grace period) and waits until the tmux server has reaped
 * them; throws FAILED_PRECONDITION, naming the pids, when something outlived
 * SIGKILL or was not reaped. Must run before the session is killed: with its
 * last session the tmux server exits, leaving the zombie to init.
 */
export async function endAgentProcesses(name: string, targets: readonly StopTarget[], graceSeconds: number): Promise<void> {
  const survivors = (await Promise.all(targets.map((t) => terminate(t, graceSeconds)))).filter((pid) => pid !== undefined);
  if (survivors.length > 0) {
    throw new FailedPreconditionError(`agent ${name}: process ${survivors.join(", ")} (or one it started) still runs ${AFTER_KILL_WAIT_MS / 1000}s after SIGKILL; not stopped, call StopAgent again`);
  }
  const unreaped = (await Promise.all(targets.map((t) => awaitReaped(t)))).filter((pid) => pid !== undefined);
  if (unreaped.length > 0) {
    throw new FailedPreconditionError(`agent ${name}: process ${unreaped.join(", ")} has ended but the tmux server has not reaped it after ${REAP_WAIT_MS / 1000}s; call StopAgent again`);
  }
}

/**
 * The processes a stop must end: the live pane's, and the tracked agent's
 * when it runs on outside its pane. A pid that now belongs to another
 * process is never signalled.
 */
export function stopTargets(a: Agent | undefined, pane: PaneInfo | undefined, log: Logger): StopTarget[] {
  const targets: StopTarget[] = [];
  if (pane && !pane.dead) {
    const stat = readProcStatSync(pane.panePid);
    const expected = a?.panePid === pane.panePid && a.pidStartTicks !== -1 ? a.pidStartTicks : stat?.startTicks;
    if (stat && expected !== undefined && isSameProcess(stat, expected)) targets.push({ pid: pane.panePid, startTicks: expected });
    else if (stat) log.warn({ panePid: pane.panePid }, "pane pid belongs to another process now; not signalling it");
  }
  if (a && a.panePid > 0 && a.pidStartTicks !== -1 && !targets.some((t) => t.pid === a.panePid) && isSameProcess(readProcStatSync(a.panePid), a.pidStartTicks)) {
    targets.push({ pid: a.panePid, startTicks: a.pidStartTicks });
  }
  return targets;
}

/** SIGTERM, then SIGKILL after the grace period. Resolves with the pid when something outlived even SIGKILL, else undefined. */
async function terminate(t: StopTarget, graceSeconds: number): Promise<number | undefined> {
  const ended = await endProcesses({
    signal: (sig) => signalAgentProcesses(t.pid, sig),
    gone: async () => (await sessionMembers(t.pid)).length === 0,
    graceMs: graceSeconds * 1000,
    afterKillMs: AFTER_KILL_WAIT_MS,
    pollMs: STOP_POLL_MS,
  });
  return ended ? undefined : t.pid;
}

/**
 * Waits until the ended process has left the process table. Its parent is the
 * tmux server, which can miss the SIGCHLD (tmux 3.3a) and then keeps it as a
 * zombie: each poll sends the server a SIGCHLD of our own. A zombie whose
 * parent is not a tmux server (the server died and init adopted it) is its new
 * parent's to reap. Resolves with the pid when it is still there at the end.
 */
async function awaitReaped(t: StopTarget): Promise<number | undefined> {
  const reaped = await waitUntil(
    () => {
      const s = readProcStatSync(t.pid);
      if (!s || s.startTicks !== t.startTicks) return true;
      if (s.state !== "Z") return false;
      if (!readProcStatSync(s.ppid)?.comm.startsWith("tmux")) return true;
      signalProcess(s.ppid, "SIGCHLD");
      return false;
    },
    REAP_WAIT_MS,
    STOP_POLL_MS,
  );
  return reaped ? undefined : t.pid;
}

/** Signals the pane's process group and every process of its session (all a pane started, unless it escaped with setsid). */
async function signalAgentProcesses(panePid: number, sig: NodeJS.Signals): Promise<void> {
  signalGroup(panePid, sig);
  for (const pid of await sessionMembers(panePid)) signalProcess(pid, sig);
}
