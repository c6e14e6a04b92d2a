import { join } from "node:path";
import { makeDirectory } from "@skein/host";
import { ConfigError, type Logger } from "@skein/runtime";
import { createPrivateFile, DIR_MODE } from "../files.js";
import { toolResultFormFor, type ToolResultForm } from "../goose-rows/content.js";
import { Connection, type Db } from "./connection.js";
import { createGooseSchema, hasSchemaVersionTable, KNOWN_SCHEMA_VERSION, schemaVersion, tableColumns } from "./schema.js";

/** What opening goose's sessions.db found out about it. */
export interface OpenedDatabase {
  readonly path: string;
  readonly conn: Connection;
  readonly sessionColumns: ReadonlySet<string>;
  readonly messageColumns: ReadonlySet<string>;
  readonly schemaVersion: number;
  readonly toolResultForm: ToolResultForm;
  /** True when this open created the database (goose then imports the directory's JSONL files once). */
  readonly created: boolean;
  /** The SQLite library's version (better-sqlite3's bundled one). */
  readonly sqliteVersion: string;
}

/**
 * Opens (or creates, private and with goose's schema) `<dir>/<name>` in WAL
 * mode as goose does, and introspects what skein needs: the tables' columns,
 * the schema version and the tool-result form its goose writes. A database
 * that is not goose's is a ConfigError naming the file; the connection is
 * closed on any failure.
 */
export async function openGooseDatabase(dir: string, name: string, log: Logger, opts: { readonly syncEachMessage: boolean }): Promise<OpenedDatabase> {
  await makeDirectory(dir, DIR_MODE);
  const path = join(dir, name);
  await createPrivateFile(path);
  const conn = Connection.open(path, { fullSync: opts.syncEachMessage });
  try {
    // goose opens every connection in WAL mode; a no-op for a database goose made.
    await conn.setup((db) => db.pragma("journal_mode = WAL"));
    const created = await conn.write((db) => {
      if (hasSchemaVersionTable(db)) return false;
      createGooseSchema(db);
      return true;
    });
    const info = await conn.read((db) => ({
      version: schemaVersion(db),
      sessions: tableColumns(db, "sessions"),
      messages: tableColumns(db, "messages"),
      latestToolValue: latestToolResultValue(db),
      sqlite: (db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v,
    }));
    for (const c of ["id", "working_dir"]) if (!info.sessions.has(c)) throw new ConfigError(`${path}: the sessions table has no ${c} column; not a goose session database`);
    if (info.version > KNOWN_SCHEMA_VERSION) {
      log.warn({ path, schemaVersion: info.version, known: KNOWN_SCHEMA_VERSION }, "session database is newer than the goose schema skein knows; using the columns skein knows");
    }
    return {
      path,
      conn,
      sessionColumns: info.sessions,
      messageColumns: info.messages,
      schemaVersion: info.version,
      toolResultForm: toolResultFormFor(info.version, info.latestToolValue),
      created,
      sqliteVersion: info.sqlite,
    };
  } catch (err) {
    await conn.close();
    throw err;
  }
}

/** The value of the newest successful toolResponse, to tell which form a schema-6 database's goose writes. */
function latestToolResultValue(db: Db): unknown {
  const row = db
    .prepare(
      "SELECT content_json FROM messages WHERE content_json LIKE '%\"toolResponse\"%' ORDER BY id DESC LIMIT 1",
    )
    .get() as { content_json: string } | undefined;
  if (!row) return undefined;
  try {
    const content = JSON.parse(row.content_json) as { type?: string; toolResult?: { value?: unknown } }[];
    return content.find((c) => c.type === "toolResponse" && c.toolResult?.value !== undefined)?.toolResult?.value;
  } catch {
    return undefined;
  }
}
