/** The session stores for programs other than the service (the CLI's import and export). */
export { SqliteSessionStore, DB_NAME } from "./sqlite/sqlite-store.js";
export { PostgresSessionStore } from "./postgres/postgres-store.js";
export { postgresSettings } from "./postgres/settings.js";
export { redactUrl } from "./postgres/database-url.js";
export { copySession, allSessionIds, type SessionImporter, type SessionExporter } from "./copy-session.js";
export { importJsonlFile, jsonlFilesIn, MAX_IMPORT_BYTES, type ImportOutcome } from "./legacy-import.js";
export { exportSessionJsonl } from "./export-jsonl.js";
export { validateSessionId } from "./ids.js";
export { DIR_MODE } from "./files.js";
export { gooseSessionsDir } from "../goose-paths.js";
