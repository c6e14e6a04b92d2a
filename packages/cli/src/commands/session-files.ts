import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, resolve } from "node:path";
import pino from "pino";
import { makeDirectory } from "@skein/host";
import type { ImportOutcome } from "@skein/goose-sessions";
import type { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import type { SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { say, type Command, type Invocation } from "../command.js";
import { CliError } from "../errors.js";
import { json } from "../format.js";
import { jsonOption } from "../options.js";

/**
 * Commands that work on the session database directly (not through the
 * service), with the service's own store code (@skein/goose-sessions): goose's
 * sessions.db allows several processes at once. The store code (the native
 * SQLite driver, the PostgreSQL client) is loaded only when one of these
 * commands runs, not for every other command.
 */
const formats = () => import("@skein/goose-sessions");
const sqlite = () => import("@skein/goose-sessions/sqlite");
const postgres = () => import("@skein/goose-sessions/postgres");

/** --to / --from, else SKEIN_SESSIONS_DIR, else goose's own sessions directory. */
async function sessionsDir(inv: Invocation, option: string): Promise<string> {
  const given = inv.string(option);
  if (given !== undefined) return resolve(given);
  const env = process.env;
  return env.SKEIN_SESSIONS_DIR ? resolve(env.SKEIN_SESSIONS_DIR) : (await formats()).gooseSessionsDir(env, env.HOME ?? homedir());
}

async function openStore(dir: string): Promise<SqliteSessionStore> {
  return (await sqlite()).SqliteSessionStore.open(dir, pino({ level: "silent" }), { syncEachMessage: true });
}

/** --store postgres (or SKEIN_SESSION_STORE=postgres): the cluster's database at --database-url or SKEIN_DATABASE_URL. */
function wantsPostgres(inv: Invocation): boolean {
  const kind = inv.string("store") ?? (process.env.SKEIN_SESSION_STORE === "postgres" ? "postgres" : "goose-sqlite");
  if (kind !== "postgres" && kind !== "goose-sqlite") throw inv.usage(`--store must be goose-sqlite or postgres, got ${JSON.stringify(kind)}`);
  if (kind !== "postgres" && inv.string("database-url") !== undefined) throw inv.usage("--database-url needs --store postgres");
  return kind === "postgres";
}

async function openPostgres(inv: Invocation): Promise<PostgresSessionStore> {
  const { postgresSettings, PostgresSessionStore } = await postgres();
  let url: string;
  try {
    url = postgresSettings({ ...process.env, SKEIN_DATABASE_URL: inv.string("database-url") ?? process.env.SKEIN_DATABASE_URL }).databaseUrl;
  } catch (err) {
    throw inv.usage((err as Error).message.replace(/^SKEIN_DATABASE_URL/, "--database-url (or SKEIN_DATABASE_URL)"));
  }
  try {
    return await PostgresSessionStore.open(url, pino({ level: "silent" }), { applicationName: "skein-cli", poolSize: 2 });
  } catch (err) {
    // open() already masks the password in its errors.
    throw new CliError(`cannot open the PostgreSQL session store: ${(err as Error).message}`);
  }
}

const storeOptions = {
  store: { type: "string", value: "KIND", help: "goose-sqlite (default; SKEIN_SESSION_STORE) or postgres", choices: ["goose-sqlite", "postgres"] },
  "database-url": { type: "string", value: "URL", help: "with --store postgres: a libpq URL (default: SKEIN_DATABASE_URL; prefer the variable, a password in arguments shows in ps)" },
} as const;

/** A goose database named on the command line: a file called sessions.db. */
const isGooseDb = (path: string) => basename(path) === "sessions.db";

async function jsonlFiles(inv: Invocation, args: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => undefined);
    if (!st) throw new CliError(`${a}: no such file or directory`);
    if (isGooseDb(a) && st.isFile()) files.push(resolve(a));
    else if (st.isDirectory()) files.push(...(await (await formats()).jsonlFilesIn(a)));
    else if (a.endsWith(".jsonl")) files.push(resolve(a));
    else throw inv.usage(`${a} is not a .jsonl file, a goose sessions.db or a directory`);
  }
  return files;
}

function describeOutcome(r: ImportOutcome): string {
  return r.result === "imported"
    ? `imported ${r.id} (${r.messages} messages${r.skippedLines ? `, ${r.skippedLines} unreadable lines left out` : ""})`
    : `skipped ${r.id} (${r.file}): ${r.reason}`;
}

const importCmd: Command = {
  name: "session import",
  synopsis: "FILE.jsonl|DIR|sessions.db... [--to DIR | --store postgres [--database-url URL]]",
  summary: "bring sessions (JSONL files, or a goose sessions.db) into goose's sessions.db or the PostgreSQL store",
  details: [
    "Follows goose's legacy import: the id is the file name without .jsonl; an id already in the",
    "database is skipped and reported; files over 50 MB or empty are skipped; the files stay where they are.",
    "A directory means its top-level *.jsonl files; a file named sessions.db means every session in it",
    "(for the PostgreSQL store). Writes the database directly, not through the service.",
  ],
  options: {
    to: { type: "string", value: "DIR", help: "the sessions directory holding sessions.db (default: SKEIN_SESSIONS_DIR, else goose's)", complete: "directory" },
    ...storeOptions,
    ...jsonOption(),
  },
  services: [],
  async run(inv) {
    inv.arg(0, "FILE.jsonl, sessions.db or DIR");
    const postgres = wantsPostgres(inv);
    if (postgres && inv.string("to") !== undefined) throw inv.usage("--to DIR and --store postgres name two targets; give one");
    const files = await jsonlFiles(inv, inv.positionals);
    const { importJsonlFile } = await formats();
    const store = postgres ? await openPostgres(inv) : await openStore(await sessionsDir(inv, "to"));
    const results: ImportOutcome[] = [];
    try {
      for (const f of files) {
        if (!isGooseDb(f)) results.push(await importJsonlFile(store, f));
        else if (store instanceof (await sqlite()).SqliteSessionStore) results.push({ file: f, id: "*", result: "failed", reason: "a goose sessions.db is imported into --store postgres only" });
        else results.push(...(await importGooseDb(f, store)));
      }
    } finally {
      await store.close();
    }
    say(inv.json ? json(results) : results.length === 0 ? "no sessions found" : results.map(describeOutcome).join("\n"));
    return results.some((r) => r.result === "failed" || r.result === "invalid-id") ? 1 : 0;
  },
};

/** Every listed session of a goose sessions.db into the PostgreSQL store, ids kept. */
async function importGooseDb(file: string, to: PostgresSessionStore): Promise<ImportOutcome[]> {
  const { allSessionIds, copySession } = await formats();
  const from = await openStore(dirname(file));
  const out: ImportOutcome[] = [];
  try {
    for (const id of await allSessionIds(from)) {
      try {
        const r = await copySession(from, id, to);
        out.push({ file, id, result: "imported", messages: r.messages, skippedLines: 0 });
      } catch (err) {
        const exists = (err as Error).name === "AlreadyExistsError" || /already in the target/.test((err as Error).message);
        out.push({ file, id, result: exists ? "exists" : "failed", reason: (err as Error).message });
      }
    }
  } finally {
    await from.close();
  }
  return out;
}

const exportCmd: Command = {
  name: "session export",
  synopsis: "ID --to DIR [--format sqlite|jsonl] [--from DIR | --store postgres [--database-url URL]]",
  summary: "write a session into a goose sessions.db in DIR (or as goose ≤1.9 JSONL DIR/ID.jsonl)",
  details: [
    "The session keeps its id, times, messages and extensions; goose resumes it from DIR.",
    "An id already in DIR's sessions.db, or an existing ID.jsonl, is never replaced.",
    "Reads the source database directly, not through the service.",
  ],
  options: {
    to: { type: "string", value: "DIR", help: "the sessions directory to write into (created when missing, as is its sessions.db)", complete: "directory" },
    format: { type: "string", value: "F", help: "sqlite (goose ≥1.10's sessions.db, the default) or jsonl (goose ≤1.9)", choices: ["sqlite", "jsonl"] },
    from: { type: "string", value: "DIR", help: "the sessions directory holding sessions.db (default: SKEIN_SESSIONS_DIR, else goose's)", complete: "directory" },
    ...storeOptions,
    ...jsonOption(),
  },
  services: [],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    inv.atMost(1);
    const { exportSessionJsonl, validateSessionId, copySession, DIR_MODE } = await formats();
    try {
      validateSessionId(id, "ID");
    } catch (err) {
      throw inv.usage((err as Error).message);
    }
    const to = inv.string("to");
    if (to === undefined) throw inv.usage("--to DIR is required");
    const format = inv.string("format") ?? "sqlite";
    if (format !== "jsonl" && format !== "sqlite") throw inv.usage(`--format must be sqlite or jsonl, got ${JSON.stringify(format)}`);
    const postgres = wantsPostgres(inv);
    if (postgres && inv.string("from") !== undefined) throw inv.usage("--from DIR and --store postgres name two sources; give one");
    const from = postgres ? await openPostgres(inv) : await openStore(await sessionsDir(inv, "from"));
    try {
      // DIR is made (0700, with its parents) once there is something to write into it, not for a mistyped id.
      if (!(await from.info(id))) throw new CliError(`session ${id} does not exist`);
      await makeDirectory(resolve(to), DIR_MODE).catch((err: NodeJS.ErrnoException) => {
        throw new CliError(err.code === "EEXIST" || err.code === "ENOTDIR" ? `${to} is not a directory` : `cannot create ${to}: ${err.message}`);
      });
      if (format === "jsonl") {
        const out = await exportSessionJsonl(from, id, resolve(to));
        say(inv.json ? json(out) : `wrote ${out.path} (${out.messages} messages)`);
      } else {
        if (!postgres && resolve(await sessionsDir(inv, "from")) === resolve(to)) throw new CliError("--to is the database the session comes from");
        const target = await openStore(resolve(to));
        try {
          const out = await copySession(from, id, target);
          say(inv.json ? json({ ...out, path: target.path }) : `wrote ${id} into ${target.path} (${out.messages} messages)`);
        } finally {
          await target.close();
        }
      }
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError((err as Error).message);
    } finally {
      await from.close();
    }
    return 0;
  },
};

export const sessionFileCommands: readonly Command[] = [importCmd, exportCmd];
