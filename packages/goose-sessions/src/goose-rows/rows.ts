import { defaultMetadata, isObject, type GooseMetadata, type JsonObject } from "../goose-format/messages.js";
import { STATE_KEY } from "../goose-format/skein-metadata.js";
import { skeinExtensionsOf, withSkeinExtensions, type SkeinExtensionEntry } from "./extension-data.js";

export type Row = Record<string, unknown>;

/** Columns skein maps from the metadata the domain works with; every other column is left as goose wrote it. */
export const TOKEN_COLUMNS = [
  "total_tokens",
  "input_tokens",
  "output_tokens",
  "accumulated_total_tokens",
  "accumulated_input_tokens",
  "accumulated_output_tokens",
] as const;

/** `YYYY-MM-DD HH:MM:SS` (SQLite's CURRENT_TIMESTAMP, UTC), the form goose writes and reads. */
export function sqlTimestamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace("T", " ");
}

/** goose's timestamps, also the RFC 3339 forms sqlx writes for imported sessions. */
export function parseSqlTimestamp(v: unknown): Date {
  if (typeof v !== "string") return new Date(0);
  const plain = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(v) ? `${v.replace(" ", "T")}Z` : v;
  const ms = Date.parse(plain);
  return Number.isNaN(ms) ? new Date(0) : new Date(ms);
}

/** Unix seconds; goose readers since 2026-08 treat values above 10^10 as milliseconds. */
export function messageSeconds(v: number): number {
  return v > 10_000_000_000 ? Math.floor(v / 1000) : v;
}

export interface RowMetadata {
  readonly metadata: GooseMetadata;
  /** stdio entries of extension_data skein could not validate (they stay stored, unused). */
  readonly skippedExtensions: string[];
  /** extension_data that is not a JSON object: kept, never rewritten. */
  readonly extensionDataUnreadable: boolean;
}

/**
 * The domain's metadata for a sessions row, read by goose's rules: the title is
 * `name`, else the older `description`; extensions are the runnable stdio entries
 * of extension_data; `user_set_name` protects the title.
 */
export function metadataOfRow(row: Row, messageCount: number): RowMetadata {
  const name = typeof row.name === "string" ? row.name : "";
  const title = name !== "" ? name : typeof row.description === "string" ? row.description : "";
  const meta = defaultMetadata(typeof row.working_dir === "string" ? row.working_dir : "", title);
  meta.message_count = messageCount;
  meta.schedule_id = typeof row.schedule_id === "string" ? row.schedule_id : null;
  for (const c of TOKEN_COLUMNS) meta[c] = typeof row[c] === "number" ? row[c] : null;
  const data = parseData(row.extension_data);
  const ext = data ? skeinExtensionsOf(data) : { extensions: [], skipped: [] };
  const own = data && isObject(data[SKEIN_DATA_KEY]) ? (data[SKEIN_DATA_KEY] as JsonObject) : {};
  meta[STATE_KEY] = {
    extensions: ext.extensions,
    description_user_set: row.user_set_name === 1 || row.user_set_name === true,
    ...(own.seq_epochs !== undefined ? { seq_epochs: own.seq_epochs } : {}),
    ...(own.approvals !== undefined ? { approvals: own.approvals } : {}),
    // goose's column (schema 8+; a database without it holds only auto sessions).
    goose_mode: typeof row.goose_mode === "string" ? row.goose_mode : "auto",
  };
  return { metadata: meta, skippedExtensions: ext.skipped, extensionDataUnreadable: data === undefined };
}

function parseData(v: unknown): JsonObject | undefined {
  return v === null || v === undefined ? {} : parseJsonObject(v);
}

/** A JSON text column holding an object; anything else (not text, not JSON, not an object) is undefined. */
export function parseJsonObject(v: unknown): JsonObject | undefined {
  if (typeof v !== "string") return undefined;
  try {
    const parsed = JSON.parse(v) as unknown;
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * skein's own entry in goose's extension_data (goose keys entries `name.version`
 * and keeps ones it does not know): what has no column of its own, today the
 * event-numbering epochs (goose-format/skein-metadata.ts).
 */
export const SKEIN_DATA_KEY = "skein.v0";

function skeinState(meta: GooseMetadata): { extensions: SkeinExtensionEntry[]; userSet: boolean; seqEpochs: unknown; mode: unknown; approvals: string } {
  const s = isObject(meta[STATE_KEY]) ? (meta[STATE_KEY] as JsonObject) : {};
  return {
    extensions: Array.isArray(s.extensions) ? (s.extensions as SkeinExtensionEntry[]) : [],
    userSet: s.description_user_set === true,
    seqEpochs: s.seq_epochs,
    mode: s.goose_mode ?? "auto",
    approvals: JSON.stringify(s.approvals ?? null),
  };
}

/**
 * The column values that change from `before` to `after`, restricted to the
 * columns the database has. Only what the domain changed is written, so every
 * other column (recipe, mode, provider, model, cache tokens, cost, …) keeps
 * goose's value.
 */
export function columnChanges(row: Row, before: GooseMetadata, after: GooseMetadata, columns: ReadonlySet<string>): Row {
  const out: Row = {};
  const set = (col: string, v: unknown) => {
    if (columns.has(col)) out[col] = v;
  };
  if (after.working_dir !== before.working_dir) set("working_dir", after.working_dir);
  if (after.description !== before.description) set(columns.has("name") ? "name" : "description", after.description);
  for (const c of TOKEN_COLUMNS) if (after[c] !== before[c]) set(c, after[c]);
  const b = skeinState(before);
  const a = skeinState(after);
  if (a.userSet !== b.userSet) set("user_set_name", a.userSet ? 1 : 0);
  if (a.mode !== b.mode) set("goose_mode", a.mode);
  const extensionsChanged = JSON.stringify(a.extensions) !== JSON.stringify(b.extensions);
  const ownChanged = a.seqEpochs !== b.seqEpochs || a.approvals !== b.approvals;
  if (extensionsChanged || ownChanged) {
    const data = parseData(row.extension_data);
    if (data === undefined) throw new Error("extension_data of this session is not a JSON object; refusing to overwrite it");
    let next = extensionsChanged ? withSkeinExtensions(data, a.extensions) : data;
    if (ownChanged) {
      const own = { ...(isObject(data[SKEIN_DATA_KEY]) ? data[SKEIN_DATA_KEY] : {}), seq_epochs: a.seqEpochs, approvals: JSON.parse(a.approvals) as unknown };
      if (own.approvals === null) delete own.approvals;
      next = { ...next, [SKEIN_DATA_KEY]: own };
    }
    set("extension_data", JSON.stringify(next));
  }
  return out;
}
