/** goose ≥ 1.10's sessions.db, shared with running goose processes. */
export { SqliteSessionStore, DB_NAME, type SqliteStoreOptions } from "./sqlite-store.js";
export { DatabaseBusyError } from "./connection.js";
