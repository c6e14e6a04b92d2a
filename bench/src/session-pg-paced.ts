import { performance } from "node:perf_hooks";
import { openaiText, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { events, reply } from "./replica-calls.js";

/** Replies, and text deltas in each, of the paced round-trip rows (deltas 10–20 ms apart, as models stream). */
export const PACED_REPLIES = 6;
export const PACED_DELTAS = 100;

/**
 * Round trips per reply when the model paces its deltas as real ones do, with the
 * default SKEIN_EVENT_BATCH_MS and with 0 (replica A restarted for each; back to the
 * default after). `calls` reads the database's statement count; `idlePerSec` is the
 * replicas' background rate, subtracted.
 */
export async function pacedRoundTrips(c: ReplicaCluster, a: SessionReplica, id: string, calls: () => Promise<number>, idlePerSec: number) {
  c.model.setFallback(() => ({ events: openaiText("x".repeat(PACED_DELTAS), { pieces: PACED_DELTAS }), delayMs: 10, jitterMs: 10 }));
  const perReply = async () => {
    const c0 = await calls();
    const t0 = performance.now();
    for (let i = 0; i < PACED_REPLIES; i++) {
      const err = await events(reply(a.client, id, `paced ${i}`));
      if (err) throw err;
    }
    const secs = (performance.now() - t0) / 1000;
    return ((await calls()) - c0 - idlePerSec * secs) / PACED_REPLIES;
  };
  try {
    const batched = await perReply();
    await a.stop();
    await a.restart({ SKEIN_EVENT_BATCH_MS: "0" });
    const unbatched = await perReply();
    return { batched, unbatched };
  } finally {
    if (a.alive) await a.stop();
    await a.restart();
    c.model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  }
}

