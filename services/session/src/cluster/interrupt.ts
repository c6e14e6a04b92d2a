import type { Logger } from "@skein/runtime";
import { agentView } from "../agent-loop/compaction.js";
import type { RunEvent } from "../runs/events.js";
import { repairTail } from "../runs/run.js";
import type { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import type { PgEventLog } from "./postgres/event-log.js";
import type { RunLease, TakenOver } from "./postgres/run-lease.js";
import { encodeEvent } from "./event-codec.js";

export interface InterruptDeps {
  readonly store: PostgresSessionStore;
  readonly events: PgEventLog;
  readonly log: Logger;
}

/**
 * Ends a run whose replica stopped renewing its lease (killed, or cut off
 * from the database), on behalf of the replica that took the lease over:
 * answers every tool request the run left open (as a cancel does), then
 * records `error` RUN_INTERRUPTED and `finished{error}` under the dead run's
 * request id, so its watchers on any replica see how it ended. Every write
 * carries `lease`, the taker's.
 */
export async function declareInterrupted(deps: InterruptDeps, lease: RunLease, was: TakenOver): Promise<void> {
  const id = lease.sessionId;
  const store = deps.store.withLease(lease);
  const out: RunEvent[] = [];
  const loaded = await store.load(id);
  const repair = loaded && repairTail(agentView(loaded.messages));
  if (repair) {
    await store.append(id, repair);
    out.push({ kind: "message", message: repair });
  }
  out.push({
    kind: "error",
    code: "RUN_INTERRUPTED",
    message: `request ${was.requestId} was interrupted: its replica ${was.owner} stopped renewing the session's lease (it died or lost the database)`,
  });
  out.push({ kind: "finished", reason: "error" });
  await deps.events.append(id, was.requestId, out.map(encodeEvent), lease);
  deps.log.warn({ sessionId: id, requestId: was.requestId, replica: was.owner, repairedToolCalls: repair ? repair.content.length : 0 }, "declared a run interrupted after its replica stopped renewing the lease");
}
