/**
 * goose's session formats and the stores that keep them, shared by the session
 * service and the CLI (which imports and exports sessions without the service).
 * This entry holds what every store shares; each store and the data format
 * have their own entry, so a program loads only the driver it uses:
 *   @skein/goose-sessions/goose-format  goose's messages and metadata, skein's record in them
 *   @skein/goose-sessions/sqlite        goose ≥ 1.10's sessions.db (SqliteSessionStore)
 *   @skein/goose-sessions/jsonl         goose ≤ 1.9's JSONL files (JsonlSessionStore)
 *   @skein/goose-sessions/postgres      goose's tables in PostgreSQL, for replicas (PostgresSessionStore)
 *   @skein/goose-sessions/goose-rows    goose's row encoding, which sessions.db and PostgreSQL share
 */
export type { SessionStore, SessionInfo, LoadedSession, SessionPage } from "./session-store.js";
export { isValidSessionId, validateSessionId, newSessionId, validateRequestId } from "./ids.js";
export { storeFault, startupProblem, type StoreTarget } from "./store-faults.js";
export { copySession, allSessionIds, CARRIED_COLUMNS, type ImportedSession, type SessionImporter, type SessionExporter } from "./copy-session.js";
export { importJsonlFile, jsonlFilesIn, MAX_IMPORT_BYTES, type ImportOutcome } from "./legacy-import.js";
export { exportSessionJsonl } from "./export-jsonl.js";
export { DIR_MODE, FILE_MODE } from "./file-modes.js";
export { gooseConfigPath, gooseSecretsPath, gooseSessionsDir } from "./goose-paths.js";
