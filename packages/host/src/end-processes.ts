import { setTimeout as delay } from "node:timers/promises";

export interface EndProcessesOptions {
  /** Sends a signal to everything being ended. */
  readonly signal: (sig: NodeJS.Signals) => void | Promise<void>;
  /** True once nothing of it is left alive. */
  readonly gone: () => boolean | Promise<boolean>;
  /** How long SIGTERM may take before SIGKILL. */
  readonly graceMs: number;
  /** After SIGKILL the kernel needs a moment to tear processes down; past this, stop waiting. */
  readonly afterKillMs: number;
  readonly pollMs: number;
}

/**
 * SIGTERM, wait up to the grace period, SIGKILL whatever is left, and wait
 * until it is gone. Resolves false when something outlived even the wait
 * after SIGKILL.
 */
export async function endProcesses(o: EndProcessesOptions): Promise<boolean> {
  await o.signal("SIGTERM");
  if (await waitUntil(o.gone, o.graceMs, o.pollMs)) return true;
  await o.signal("SIGKILL");
  return waitUntil(o.gone, o.afterKillMs, o.pollMs);
}

/** Polls until the condition holds (true) or the time is up (false). */
export async function waitUntil(condition: () => boolean | Promise<boolean>, withinMs: number, pollMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(pollMs);
  }
}
