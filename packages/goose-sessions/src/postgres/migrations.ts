/**
 * The PostgreSQL schema, one numbered step at a time. Steps are applied in
 * order at start-up under an advisory lock (see migrate.ts); a step is never
 * edited once released, a change is a new step.
 *
 * sessions/messages mirror goose's sessions.db (crates/goose/src/session/
 * session_manager.rs, schema 16) so a session can leave the cluster for a goose
 * sessions.db without translation: the same columns, content_json holding the
 * content array, metadata_json the visibility flags. JSON columns are jsonb.
 *
 * The cluster tables:
 * - session_seq: the last event seq handed out per session. Not tied to the
 *   sessions row: a session id deleted and allocated again continues its
 *   numbering, so a seq never repeats for an id.
 * - session_events: a bounded window of each session's events (the encoded
 *   SessionEvent), trimmed to the last SKEIN_EVENT_BUFFER on append.
 * - session_runs: one row while a run holds the session; the primary key is
 *   the one-run-per-session rule across replicas; the lease expires unless renewed.
 */
export interface Migration {
  readonly version: number;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  user_set_name BOOLEAN NOT NULL DEFAULT FALSE,
  session_type TEXT NOT NULL DEFAULT 'user',
  working_dir TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  extension_data JSONB NOT NULL DEFAULT '{}'::jsonb,
  total_tokens BIGINT,
  input_tokens BIGINT,
  output_tokens BIGINT,
  accumulated_total_tokens BIGINT,
  accumulated_input_tokens BIGINT,
  accumulated_output_tokens BIGINT,
  cache_read_tokens BIGINT,
  cache_write_tokens BIGINT,
  accumulated_cache_read_tokens BIGINT,
  accumulated_cache_write_tokens BIGINT,
  schedule_id TEXT,
  recipe_json JSONB,
  user_recipe_values_json JSONB,
  provider_name TEXT,
  model_config_json JSONB,
  goose_mode TEXT NOT NULL DEFAULT 'auto',
  archived_at TIMESTAMPTZ,
  project_id TEXT,
  accumulated_cost DOUBLE PRECISION,
  parent_session_id TEXT
);
CREATE INDEX sessions_updated_idx ON sessions (updated_at DESC);

CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  message_id TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  content_json JSONB NOT NULL,
  created_timestamp BIGINT NOT NULL,
  timestamp TIMESTAMPTZ NOT NULL DEFAULT now(),
  tokens BIGINT,
  metadata_json JSONB NOT NULL DEFAULT '{"userVisible": true, "agentVisible": true}'::jsonb
);
CREATE INDEX messages_session_idx ON messages (session_id, created_timestamp, id);
CREATE INDEX messages_message_id_idx ON messages (session_id, message_id);

CREATE TABLE session_seq (
  session_id TEXT PRIMARY KEY,
  last_seq BIGINT NOT NULL
);

CREATE TABLE session_events (
  session_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  request_id TEXT NOT NULL,
  event BYTEA NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, seq)
);

CREATE TABLE session_runs (
  session_id TEXT PRIMARY KEY,
  request_id TEXT NOT NULL,
  lease_id UUID NOT NULL,
  owner TEXT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  lease_expires_at TIMESTAMPTZ NOT NULL,
  cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX session_runs_expiry_idx ON session_runs (lease_expires_at);
CREATE INDEX session_runs_owner_idx ON session_runs (owner);
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;
