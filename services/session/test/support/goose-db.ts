import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { expect } from "vitest";

/**
 * Databases built the way goose builds them, from goose's own SQL (see
 * test/fixtures/goose-db/README.md), and goose's read rules as checks. This
 * copy of goose's SQL is deliberately independent of the service's schema.ts:
 * the tests compare the two.
 */
export const gooseDbFixtures = fileURLToPath(new URL("../../../../test/fixtures/goose-db/", import.meta.url));
const sql = (name: string) => readFileSync(`${gooseDbFixtures}${name}`, "utf8");

export interface GooseMessageJson {
  id: string | null;
  role: "user" | "assistant";
  created: number;
  content: Record<string, unknown>[];
  metadata?: Record<string, unknown>;
}

/** goose's scenario recording `anthropic/weather_tool.json`: a tool call and its answer. */
export function weatherConversation(): GooseMessageJson[] {
  return JSON.parse(sql("weather_tool.messages.json")) as GooseMessageJson[];
}

/** goose's connection settings: WAL, foreign keys (and its 30 s busy timeout). */
export function openLikeGoose(path: string): Database.Database {
  const db = new Database(path, { timeout: 30_000 });
  db.pragma("journal_mode = WAL");
  db.pragma("foreign_keys = ON");
  return db;
}

/** A new goose 1.47 database: create_schema in one BEGIN IMMEDIATE. */
export function buildFreshGooseDb(path: string): Database.Database {
  const db = openLikeGoose(path);
  db.transaction(() => db.exec(sql("fresh-v16.sql"))).immediate();
  return db;
}

/**
 * A database goose 1.10 created at schema 1, then upgraded by goose step by
 * step to 16 (one schema_version row per step, threads leftovers of step 10).
 * `atV1` runs against the version-1 schema first, as goose 1.10 would have written.
 */
export function buildUpgradedGooseDb(path: string, atV1: (db: Database.Database) => void = () => undefined): Database.Database {
  const db = openLikeGoose(path);
  db.transaction(() => db.exec(sql("v1.sql"))).immediate();
  atV1(db);
  db.transaction(() => {
    for (let v = 2; v <= 16; v++) {
      db.exec(sql(`migrations/${v}.sql`));
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(v);
    }
  }).immediate();
  return db;
}

/** The database's tables and indexes, as comparable rows. */
export function schemaOf(db: Database.Database): { type: string; name: string; sql: string | null }[] {
  return db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as { type: string; name: string; sql: string | null }[];
}

export interface GooseSessionSpec {
  id: string;
  name?: string;
  workingDir?: string;
  extensionData?: Record<string, unknown>;
  /** Extra columns as goose sets them (recipe_json, goose_mode, provider_name, …), written only where they exist. */
  columns?: Record<string, unknown>;
  messages?: GooseMessageJson[];
}

/** A session written as goose writes one: create_session's insert, then add_message per message. */
export function insertGooseSession(db: Database.Database, s: GooseSessionSpec): void {
  const have = new Set((db.prepare("SELECT name FROM pragma_table_info('sessions')").all() as { name: string }[]).map((r) => r.name));
  const msgCols = new Set((db.prepare("SELECT name FROM pragma_table_info('messages')").all() as { name: string }[]).map((r) => r.name));
  const values: Record<string, unknown> = {
    id: s.id,
    working_dir: s.workingDir ?? "/tmp",
    extension_data: JSON.stringify(s.extensionData ?? {}),
    ...(have.has("name") ? { name: s.name ?? "CLI Session", user_set_name: 0 } : { description: s.name ?? "" }),
    ...Object.fromEntries(Object.entries(s.columns ?? {}).filter(([k]) => have.has(k))),
  };
  const cols = Object.keys(values);
  db.transaction(() => {
    db.prepare(`INSERT INTO sessions (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`).run(...cols.map((c) => values[c]));
    for (const m of s.messages ?? []) {
      const row: Record<string, unknown> = { session_id: s.id, role: m.role, content_json: JSON.stringify(m.content), created_timestamp: m.created };
      if (msgCols.has("message_id")) row.message_id = m.id ?? `msg_${s.id}_${Math.random().toString(16).slice(2)}`;
      if (msgCols.has("metadata_json")) row.metadata_json = JSON.stringify(m.metadata ?? { userVisible: true, agentVisible: true });
      const k = Object.keys(row);
      db.prepare(`INSERT INTO messages (${k.join(", ")}) VALUES (${k.map(() => "?").join(", ")})`).run(...k.map((c) => row[c]));
    }
  }).immediate();
}

/** Every messages row of a session, in goose's read order, exactly as stored. */
export function rawMessageRows(db: Database.Database, sessionId: string): Record<string, unknown>[] {
  return db.prepare("SELECT * FROM messages WHERE session_id = ? ORDER BY created_timestamp, id").all(sessionId) as Record<string, unknown>[];
}

const GOOSE_TYPES = new Set(["text", "image", "toolRequest", "toolResponse", "toolConfirmationRequest", "actionRequired", "frontendToolRequest", "thinking", "redactedThinking", "systemNotification", "error"]);
const SQL_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/**
 * Checks a session's row and the message rows `isOurs` selects against goose
 * 1.47's read rules (FromRow for sessions, get_conversation and Message's
 * serde for messages). `toolValue` is the toolResponse form the database's
 * goose reads. Returns the session's messages as goose would load them.
 */
export function expectGooseReadable(
  db: Database.Database,
  sessionId: string,
  opts: { isOurs?: (row: Record<string, unknown>) => boolean; toolValue?: "object" | "array" } = {},
): GooseMessageJson[] {
  const s = db.prepare("SELECT * FROM sessions WHERE id = ?").get(sessionId) as Record<string, unknown> | undefined;
  expect(s, `session ${sessionId}`).toBeDefined();
  expect(s!.created_at).toMatch(SQL_TIME);
  expect(s!.updated_at).toMatch(SQL_TIME);
  expect(typeof s!.working_dir).toBe("string");
  expect(typeof s!.extension_data).toBe("string");
  const data = JSON.parse(s!.extension_data as string) as unknown;
  expect(typeof data === "object" && data !== null && !Array.isArray(data)).toBe(true);
  if ("session_type" in s!) expect(["user", "scheduled"]).toContain(s!.session_type);
  if ("goose_mode" in s!) expect(["auto", "approve", "smart_approve", "chat"]).toContain(s!.goose_mode);
  if ("name" in s!) expect(typeof s!.name).toBe("string");

  const rows = rawMessageRows(db, sessionId);
  const out: GooseMessageJson[] = [];
  const requested = new Set<string>();
  const answered = new Set<string>();
  for (const r of rows) {
    expect(["user", "assistant"]).toContain(r.role);
    const content = JSON.parse(r.content_json as string) as Record<string, unknown>[];
    expect(Array.isArray(content)).toBe(true);
    for (const c of content) {
      expect(GOOSE_TYPES.has(c.type as string), `content type ${String(c.type)}`).toBe(true);
      if (c.type === "toolRequest") requested.add(c.id as string);
      if (c.type === "toolResponse") answered.add(c.id as string);
    }
    const meta = r.metadata_json === undefined ? undefined : (JSON.parse(r.metadata_json as string) as Record<string, unknown>);
    if (opts.isOurs?.(r) ?? true) {
      expect(Number.isInteger(r.created_timestamp)).toBe(true);
      expect(r.created_timestamp as number).toBeGreaterThan(1_600_000_000);
      expect(r.created_timestamp as number).toBeLessThan(10_000_000_000);
      if ("metadata_json" in r) {
        expect(typeof meta!.userVisible).toBe("boolean");
        expect(typeof meta!.agentVisible).toBe("boolean");
      }
      if ("message_id" in r) expect(typeof r.message_id).toBe("string");
      for (const c of content) {
        if (c.type === "text") expect(typeof c.text).toBe("string");
        if (c.type === "toolRequest") expect(c.toolCall).toMatchObject({ status: expect.stringMatching(/^(success|error)$/) });
        if (c.type === "toolResponse") {
          const result = c.toolResult as { status: string; value?: unknown; error?: unknown };
          if (result.status === "success") {
            if (opts.toolValue === "array") expect(Array.isArray(result.value)).toBe(true);
            else expect(result.value).toMatchObject({ content: expect.any(Array) });
          } else expect(typeof result.error).toBe("string");
        }
      }
    }
    out.push({ id: (r.message_id as string | undefined) ?? null, role: r.role as "user" | "assistant", created: r.created_timestamp as number, content, ...(meta ? { metadata: meta } : {}) });
  }
  expect([...requested].filter((id) => !answered.has(id))).toEqual([]);
  return out;
}
