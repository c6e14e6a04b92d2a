export type RestartPolicyName = "never" | "on-failure" | "always";

export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_MAX_MS = 5 * 60_000;
/** A run this long counts as healthy: the backoff and the give-up count start over. */
export const HEALTHY_RUN_MS = 10 * 60_000;
export const DEFAULT_MAX_RESTARTS = 10;

export interface ExitFacts {
  readonly policy: RestartPolicyName;
  /** Exit status; undefined when killed by a signal or unknown (counts as a failure). */
  readonly exitStatus: number | undefined;
  /** How long the run that just ended lasted. */
  readonly ranMs: number;
  /** Restarts since the last healthy run. */
  readonly consecutiveRestarts: number;
  readonly maxRestarts: number;
}

/** `consecutiveRestarts`: the count after a healthy run reset it, before the restart to come. */
export type RestartDecision =
  | { readonly action: "none" }
  | { readonly action: "give-up"; readonly consecutiveRestarts: number }
  | { readonly action: "restart"; readonly delayMs: number; readonly consecutiveRestarts: number };

/**
 * What to do when an agent's process ended. Backoff is 1 s doubling to 5 min;
 * a run of 10 min resets it and the give-up count, so an agent that crashes
 * once a day is restarted forever while a crash loop gives up after
 * max_restarts.
 */
export function decideRestart(f: ExitFacts): RestartDecision {
  const failed = f.exitStatus !== 0;
  if (f.policy === "never" || (f.policy === "on-failure" && !failed)) return { action: "none" };
  const consecutive = f.ranMs >= HEALTHY_RUN_MS ? 0 : f.consecutiveRestarts;
  if (consecutive >= f.maxRestarts) return { action: "give-up", consecutiveRestarts: consecutive };
  return { action: "restart", delayMs: backoffMs(consecutive), consecutiveRestarts: consecutive };
}

export function backoffMs(consecutiveRestarts: number): number {
  return Math.min(BACKOFF_BASE_MS * 2 ** Math.min(consecutiveRestarts, 30), BACKOFF_MAX_MS);
}
