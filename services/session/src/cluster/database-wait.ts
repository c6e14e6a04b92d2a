import { setTimeout as sleep } from "node:timers/promises";
import { RepeatedFaults, StorageUnavailableError, type Logger } from "@skein/runtime";
import { redactError, redactUrl } from "@skein/goose-sessions/postgres";
import { storeFault } from "@skein/goose-sessions";

/** Between attempts to reach the database at start-up. */
const RETRY_EVERY_MS = 1_000;

/**
 * Runs `attempt` (connect and migrate) until it works, retrying while the
 * database is unreachable (store-faults.ts's UNAVAILABLE) for up to `waitMs`.
 * Any other failure, or the database still unreachable after `waitMs`, is
 * thrown (the caller makes it the one line the service exits 2 with).
 */
export async function whileUnreachable<T>(attempt: () => Promise<T>, url: string, waitMs: number, log: Logger): Promise<T> {
  const started = Date.now();
  const target = { kind: "postgres", location: redactUrl(url) } as const;
  const faults = new RepeatedFaults(log, "connecting to the session database", "attempts");
  for (let tries = 1; ; tries++) {
    try {
      const out = await attempt();
      if (tries > 1) faults.succeeded("start-up");
      return out;
    } catch (err) {
      const waited = Date.now() - started;
      if (!(storeFault(err, target) instanceof StorageUnavailableError)) throw err;
      if (waited >= waitMs) {
        const e = redactError(url, err);
        throw new Error(`the database did not answer within SKEIN_DATABASE_WAIT_MS=${waitMs}: ${e.message}`);
      }
      faults.failed("start-up", redactError(url, err), { database: target.location, waitMs, retryInMs: RETRY_EVERY_MS });
      await sleep(Math.min(RETRY_EVERY_MS, waitMs - waited));
    }
  }
}
