import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { resolve } from "node:path";
import pino from "pino";
import type { ImportOutcome, SqliteSessionStore } from "@skein/session-service/store";
import { say, type Command, type Invocation } from "../command.js";
import { CliError } from "../errors.js";
import { json } from "../format.js";
import { jsonOption } from "../options.js";

/**
 * Commands that work on the session database directly (not through the
 * service), with the service's own store code: goose's sessions.db allows
 * several processes at once. The store code (and its native SQLite driver) is
 * loaded only when one of these commands runs, not for every other command.
 */
const stores = () => import("@skein/session-service/store");

/** --to / --from, else SKEIN_SESSIONS_DIR, else goose's own sessions directory. */
async function sessionsDir(inv: Invocation, option: string): Promise<string> {
  const given = inv.string(option);
  if (given !== undefined) return resolve(given);
  const env = process.env;
  return env.SKEIN_SESSIONS_DIR ? resolve(env.SKEIN_SESSIONS_DIR) : (await stores()).gooseSessionsDir(env, env.HOME ?? homedir());
}

async function openStore(dir: string): Promise<SqliteSessionStore> {
  return (await stores()).SqliteSessionStore.open(dir, pino({ level: "silent" }), { syncEachMessage: true });
}

async function jsonlFiles(inv: Invocation, args: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of args) {
    const st = await stat(a).catch(() => undefined);
    if (!st) throw new CliError(`${a}: no such file or directory`);
    if (st.isDirectory()) files.push(...(await (await stores()).jsonlFilesIn(a)));
    else if (a.endsWith(".jsonl")) files.push(resolve(a));
    else throw inv.usage(`${a} is not a .jsonl file or a directory`);
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
  synopsis: "FILE.jsonl|DIR... [--to DIR]",
  summary: "move JSONL sessions (skein's or goose ≤1.9's) into goose's sessions.db",
  details: [
    "Follows goose's legacy import: the id is the file name without .jsonl; an id already in the",
    "database is skipped and reported; files over 50 MB or empty are skipped; the files stay where they are.",
    "A directory means its top-level *.jsonl files. Writes the database directly, not through the service.",
  ],
  options: {
    to: { type: "string", value: "DIR", help: "the sessions directory holding sessions.db (default: SKEIN_SESSIONS_DIR, else goose's)", complete: "directory" },
    ...jsonOption(),
  },
  services: [],
  async run(inv) {
    inv.arg(0, "FILE.jsonl or DIR");
    const files = await jsonlFiles(inv, inv.positionals);
    const { importJsonlFile } = await stores();
    const store = await openStore(await sessionsDir(inv, "to"));
    const results: ImportOutcome[] = [];
    try {
      for (const f of files) results.push(await importJsonlFile(store, f));
    } finally {
      await store.close();
    }
    say(inv.json ? json(results) : results.length === 0 ? "no .jsonl files found" : results.map(describeOutcome).join("\n"));
    return results.some((r) => r.result === "failed" || r.result === "invalid-id") ? 1 : 0;
  },
};

const exportCmd: Command = {
  name: "session export",
  synopsis: "ID --to DIR [--format jsonl] [--from DIR]",
  summary: "write a session of sessions.db as a goose ≤1.9 JSONL file DIR/ID.jsonl",
  details: ["Reads the database directly, not through the service."],
  options: {
    to: { type: "string", value: "DIR", help: "where to write ID.jsonl (an existing file is not replaced)", complete: "directory" },
    format: { type: "string", value: "F", help: "jsonl, the only format so far", choices: ["jsonl"] },
    from: { type: "string", value: "DIR", help: "the sessions directory holding sessions.db (default: SKEIN_SESSIONS_DIR, else goose's)", complete: "directory" },
    ...jsonOption(),
  },
  services: [],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    inv.atMost(1);
    const { exportSessionJsonl, validateSessionId } = await stores();
    try {
      validateSessionId(id, "ID");
    } catch (err) {
      throw inv.usage((err as Error).message);
    }
    const to = inv.string("to");
    if (to === undefined) throw inv.usage("--to DIR is required");
    const format = inv.string("format") ?? "jsonl";
    if (format !== "jsonl") throw inv.usage(`--format must be jsonl, got ${JSON.stringify(format)}`);
    if (!(await stat(to).then((s) => s.isDirectory(), () => false))) throw new CliError(`${to} is not an existing directory`);
    const store = await openStore(await sessionsDir(inv, "from"));
    try {
      const out = await exportSessionJsonl(store, id, resolve(to));
      say(inv.json ? json(out) : `wrote ${out.path} (${out.messages} messages)`);
    } catch (err) {
      throw new CliError((err as Error).message);
    } finally {
      await store.close();
    }
    return 0;
  },
};

export const sessionFileCommands: readonly Command[] = [importCmd, exportCmd];
