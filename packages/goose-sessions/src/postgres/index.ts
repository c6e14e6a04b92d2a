/** goose's session tables in PostgreSQL, for replicas: the store, its schema, pool, settings and the run-lease write fence. */
export { PostgresSessionStore } from "./postgres-store.js";
export { postgresSettings, type PostgresSettings } from "./settings.js";
export { redactUrl, redactorFor, passwordOf } from "./database-url.js";
export { createPool, inTransaction, prepared, redactError, isConnectionError } from "./pool.js";
export { postgresProbe } from "./probe.js";
export { migrate, LATEST_SCHEMA_VERSION, SchemaTooNewError } from "./migrate.js";
export { MIGRATIONS, type Migration } from "./migrations.js";
export { checkLease, LeaseLostError, DELETED_CHANNEL, type RunLease } from "./run-fence.js";
