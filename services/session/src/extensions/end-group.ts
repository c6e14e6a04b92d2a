import { endProcesses, groupMembers, signalGroup } from "@skein/host";

export const DEFAULT_KILL_GRACE_MS = 2_000;
const POLL_MS = 20;
// After SIGKILL the kernel needs a moment to tear the processes down; past this, give up waiting.
const AFTER_KILL_WAIT_MS = 5_000;

/**
 * Ends process group `pgid` and everything in it (grandchildren too):
 * SIGTERM, then SIGKILL once `graceMs` has passed, and waits until no live
 * member is left. Zombies are not counted: their parent (us for the leader,
 * init for orphans) reaps them.
 */
export async function endProcessGroup(pgid: number, graceMs = DEFAULT_KILL_GRACE_MS): Promise<void> {
  await endProcesses({
    signal: (sig) => {
      signalGroup(pgid, sig);
    },
    // A group we can no longer signal is gone (or was never there): nothing to wait for.
    gone: () => !signalGroup(pgid, 0) || groupMembers(pgid).length === 0,
    graceMs,
    afterKillMs: AFTER_KILL_WAIT_MS,
    pollMs: POLL_MS,
  });
}
