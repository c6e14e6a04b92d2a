/**
 * PostgreSQL for session replicas: the pieces a session slot wires together.
 *
 *   const store   = await PostgresSessionStore.open(url, log)       // migrates under an advisory lock
 *   const leases  = new RunLeases(store.pool, settings.runLeaseMs)  // one run per session, in the database
 *   const keeper  = new LeaseKeeper(leases, replicaId, log)         // renews this replica's leases
 *   const events  = new PgEventLog(store.pool, config.eventBuffer)  // numbered, windowed replay
 *   const listen  = new PgListener(url, log, { channels: [EVENTS_CHANNEL, CANCEL_CHANNEL], applicationName })
 *   const follow  = new EventFollower(events, listen)               // WatchSession from any replica
 *   const cancels = new CancelSignals(leases, listen, replicaId)    // CancelReply from any replica
 *
 * A run: acquire → keeper.keep + cancels.watch → writes through store.withLease(lease)
 * and events.append(…, lease) → release. A lease not renewed for SKEIN_RUN_LEASE_MS is
 * taken over by the next acquire (any replica), which reports the interrupted run.
 */
export { PostgresSessionStore, type PostgresStoreOptions } from "../postgres-store.js";
export { RunLeases, SessionBusyError, LeaseLostError, checkLease, CANCEL_CHANNEL, type RunLease, type Acquired, type TakenOver, type RenewResult } from "./run-lease.js";
export { LeaseKeeper } from "./lease-keeper.js";
export { PgEventLog, EVENTS_CHANNEL, DELETED_CHANNEL, checkCursor, type StoredEvent } from "./event-log.js";
export { PgListener, type ListenerOptions } from "./listener.js";
export { EventFollower } from "./follower.js";
export { CancelSignals } from "./cancel-signals.js";
export { migrate, SchemaTooNewError, LATEST_SCHEMA_VERSION, MIGRATION_LOCK_KEY, type MigrationResult } from "./migrate.js";
export { postgresSettings, type PostgresSettings } from "./settings.js";
export { redactUrl, redactorFor } from "./database-url.js";
