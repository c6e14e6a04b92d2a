import { join } from "node:path";
import { makeDirectory } from "@skein/host";
import { ConfigError, type Logger } from "@skein/runtime";
import type { StoreKind } from "../config.js";
import { DIR_MODE, importJsonlFile, jsonlFilesIn, startupProblem, type SessionStore, type StoreTarget } from "@skein/goose-sessions";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";
import { SqliteSessionStore, DB_NAME } from "@skein/goose-sessions/sqlite";

/**
 * The configured store. When skein is the program that creates sessions.db,
 * it imports the directory's JSONL sessions once, as goose does when it
 * creates the database (goose never imports into a database it did not create).
 */
export async function openSessionStore(kind: StoreKind, dir: string, log: Logger, opts: { syncEachMessage: boolean }): Promise<SessionStore> {
  // A directory that cannot be made is a bad setting (exit 2, one line), not a failed start's stack.
  await makeDirectory(dir, DIR_MODE).catch((err: unknown) => {
    throw new ConfigError(`SKEIN_SESSIONS_DIR=${JSON.stringify(dir)} cannot be created: ${(err as Error).message}`);
  });
  if (kind === "goose-jsonl") return JsonlSessionStore.open(dir, log, opts).catch(asStartupProblem({ kind: "jsonl", location: dir }));
  const store = await SqliteSessionStore.open(dir, log, opts).catch(asStartupProblem({ kind: "sqlite", location: join(dir, DB_NAME) }));
  log.info({ path: store.path, sqliteVersion: store.sqliteVersion, schemaVersion: store.schemaVersion, toolResultForm: store.toolResultForm, created: store.created }, "goose session database");
  if (store.created) {
    for (const file of await jsonlFilesIn(dir)) {
      const r = await importJsonlFile(store, file);
      if (r.result === "imported") log.info({ file, sessionId: r.id, messages: r.messages }, "imported a JSONL session into the new database");
      else log.warn({ file, sessionId: r.id, result: r.result, reason: r.reason }, "JSONL session not imported");
    }
  }
  return store;
}

/**
 * A damaged, read-only or full store at start-up exits 2 with one line naming
 * the file and what is wrong with it (nothing was written to it), not a stack.
 */
function asStartupProblem(target: StoreTarget): (err: unknown) => never {
  return (err) => {
    const problem = startupProblem(err, target);
    throw problem ? new ConfigError(problem) : err;
  };
}
