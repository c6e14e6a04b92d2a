import type { Db } from "./connection.js";

/**
 * goose 1.47's sessions.db schema (crates/goose/src/session/session_manager.rs,
 * `create_schema`, CURRENT_SCHEMA_VERSION 16, plus the provider inventory tables
 * of crates/goose/src/providers/inventory/mod.rs, created in the same
 * transaction). A database skein creates is this, statement for statement, so a
 * later goose opens it and takes the migration path without error. skein never
 * migrates goose's schema: an older or newer database is used through the
 * columns it has.
 */
export const KNOWN_SCHEMA_VERSION = 16;

export const CREATE_SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS schema_version (
                version INTEGER PRIMARY KEY,
                applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
            )`,
  `CREATE TABLE IF NOT EXISTS sessions (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '',
                user_set_name BOOLEAN DEFAULT FALSE,
                session_type TEXT NOT NULL DEFAULT 'user',
                working_dir TEXT NOT NULL,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                extension_data TEXT DEFAULT '{}',
                total_tokens INTEGER,
                input_tokens INTEGER,
                output_tokens INTEGER,
                cache_read_tokens INTEGER,
                cache_write_tokens INTEGER,
                accumulated_total_tokens INTEGER,
                accumulated_input_tokens INTEGER,
                accumulated_output_tokens INTEGER,
                accumulated_cache_read_tokens INTEGER,
                accumulated_cache_write_tokens INTEGER,
                accumulated_cost REAL,
                schedule_id TEXT,
                recipe_json TEXT,
                user_recipe_values_json TEXT,
                provider_name TEXT,
                model_config_json TEXT,
                goose_mode TEXT NOT NULL DEFAULT 'auto',
                archived_at TIMESTAMP,
                project_id TEXT,
                parent_session_id TEXT
            )`,
  `CREATE TABLE IF NOT EXISTS messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_id TEXT,
                session_id TEXT NOT NULL REFERENCES sessions(id),
                role TEXT NOT NULL,
                content_json TEXT NOT NULL,
                created_timestamp INTEGER NOT NULL,
                timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                tokens INTEGER,
                metadata_json TEXT
            )`,
  `CREATE TABLE IF NOT EXISTS usage_ledger (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                created_timestamp INTEGER NOT NULL,
                model TEXT,
                input_tokens INTEGER,
                output_tokens INTEGER,
                total_tokens INTEGER,
                cache_read_tokens INTEGER,
                cache_write_tokens INTEGER,
                cost REAL,
                cost_source TEXT,
                is_compaction INTEGER DEFAULT 0
            )`,
  "CREATE INDEX IF NOT EXISTS idx_messages_session ON messages(session_id)",
  "CREATE INDEX IF NOT EXISTS idx_messages_timestamp ON messages(timestamp)",
  "CREATE INDEX IF NOT EXISTS idx_messages_message_id ON messages(message_id)",
  "CREATE INDEX IF NOT EXISTS idx_messages_session_created ON messages(session_id, created_timestamp, id)",
  "CREATE INDEX IF NOT EXISTS idx_sessions_updated ON sessions(updated_at DESC)",
  "CREATE INDEX IF NOT EXISTS idx_sessions_type ON sessions(session_type)",
  "CREATE INDEX IF NOT EXISTS idx_sessions_parent ON sessions(parent_session_id)",
  "CREATE INDEX IF NOT EXISTS idx_usage_ledger_session ON usage_ledger(session_id)",
  `CREATE TABLE IF NOT EXISTS provider_inventory_entries (
            inventory_key TEXT PRIMARY KEY,
            provider_id TEXT NOT NULL,
            provider_family TEXT NOT NULL,
            last_updated_at TEXT,
            last_refresh_attempt_at TEXT,
            last_refresh_error TEXT,
            created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
            updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
        )`,
  `CREATE TABLE IF NOT EXISTS provider_inventory_models (
            inventory_key TEXT NOT NULL REFERENCES provider_inventory_entries(inventory_key) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            model_id TEXT NOT NULL,
            name TEXT NOT NULL,
            family TEXT,
            context_limit INTEGER,
            reasoning BOOLEAN,
            recommended BOOLEAN,
            PRIMARY KEY (inventory_key, ordinal)
        )`,
  "CREATE INDEX IF NOT EXISTS idx_provider_inventory_provider_id ON provider_inventory_entries(provider_id)",
];

/**
 * goose's create_schema: every statement IF NOT EXISTS and the version row
 * INSERT OR IGNORE, so two processes creating the database at once agree.
 * Runs inside the caller's BEGIN IMMEDIATE.
 */
export function createGooseSchema(db: Db): void {
  db.exec(CREATE_SCHEMA[0]!);
  db.prepare("INSERT OR IGNORE INTO schema_version (version) VALUES (?)").run(KNOWN_SCHEMA_VERSION);
  for (const sql of CREATE_SCHEMA.slice(1)) db.exec(sql);
}

export function hasSchemaVersionTable(db: Db): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get() !== undefined;
}

/** MAX(version), 0 without rows, as goose reads it. */
export function schemaVersion(db: Db): number {
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as { v: number | null };
  return row.v ?? 0;
}

/** The columns a table has, by name: goose's upgraded databases order them differently from fresh ones. */
export function tableColumns(db: Db, table: "sessions" | "messages"): Set<string> {
  const rows = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}
