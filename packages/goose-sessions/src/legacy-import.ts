import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { looksLikeMetadata, normalizeMetadata, parseMessage, type GooseMessage } from "./goose-format/messages.js";
import { isValidSessionId } from "./ids.js";
import type { SessionImporter } from "./copy-session.js";
import { sqlTimestamp } from "./goose-rows/rows.js";

/** goose's legacy import limit (crates/goose/src/session/legacy.rs). */
export const MAX_IMPORT_BYTES = 50 * 1024 * 1024;
const SUFFIX = ".jsonl";

export type ImportOutcome =
  | { file: string; id: string; result: "imported"; messages: number; skippedLines: number }
  | { file: string; id: string; result: "exists" | "too-large" | "empty" | "invalid-id" | "failed"; reason: string };

/** The top-level `*.jsonl` files of a directory, as goose's legacy import lists them. */
export async function jsonlFilesIn(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((n) => n.endsWith(SUFFIX)).sort().map((n) => join(dir, n));
}

/**
 * Imports one goose ≤1.9 (or skein) JSONL session with goose's legacy rules:
 * the id is the file stem; an id already present is skipped; files over 50 MB
 * or empty are skipped; the first line must be the metadata; message lines that
 * do not parse are left out (goose does the same); the file stays where it is.
 * created_at is the file's birth time (else the time in a goose-style name,
 * else its mtime), updated_at its mtime.
 */
export async function importJsonlFile(store: SessionImporter, file: string): Promise<ImportOutcome> {
  const id = basename(file, SUFFIX);
  if (!isValidSessionId(id)) return { file, id, result: "invalid-id", reason: "the file name is not a valid session id" };
  try {
    const st = await stat(file);
    if (st.size > MAX_IMPORT_BYTES) return { file, id, result: "too-large", reason: `larger than ${MAX_IMPORT_BYTES} bytes` };
    if (st.size === 0) return { file, id, result: "empty", reason: "empty session file" };
    const lines = (await readFile(file, "utf8")).split("\n");
    let first: unknown;
    try {
      first = JSON.parse(lines[0] ?? "");
    } catch {
      return { file, id, result: "failed", reason: "invalid session metadata JSON on line 1" };
    }
    if (!looksLikeMetadata(first)) return { file, id, result: "failed", reason: "line 1 is not session metadata" };
    const messages: GooseMessage[] = [];
    let skippedLines = 0;
    for (const line of lines.slice(1)) {
      if (line.trim() === "") continue;
      try {
        messages.push(parseMessage(line));
      } catch {
        skippedLines++;
      }
    }
    const created = st.birthtimeMs > 0 ? st.birthtime : (timeInName(id) ?? st.mtime);
    const inserted = await store.importSession({ id, metadata: normalizeMetadata(first), messages, createdAt: sqlTimestamp(created), updatedAt: sqlTimestamp(st.mtime) });
    if (!inserted) return { file, id, result: "exists", reason: `a session ${id} is already in the database` };
    return { file, id, result: "imported", messages: messages.length, skippedLines };
  } catch (err) {
    return { file, id, result: "failed", reason: (err as Error).message };
  }
}

/** goose CLI names such as 20250325_200615 (local time). */
function timeInName(id: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(id);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, s);
}
