import { AlreadyExistsError, NotFoundError } from "@skein/runtime";
import type { GooseMessage, GooseMetadata } from "./goose-format/messages.js";

/** A session goose ≤1.9 or skein wrote as JSONL, ready to be inserted under its file's id. */
export interface ImportedSession {
  readonly id: string;
  readonly metadata: GooseMetadata;
  readonly messages: readonly GooseMessage[];
  readonly createdAt: string;
  readonly updatedAt: string;
  /**
   * goose's own session columns the domain's metadata does not carry
   * (CARRIED_COLUMNS: the whole extension_data, recipe, mode, provider, model,
   * cache tokens, cost, …), as sessions.db stores them (JSON as text,
   * timestamps as `YYYY-MM-DD HH:MM:SS`): moved unchanged between databases.
   */
  readonly columns?: Readonly<Record<string, unknown>>;
}

/** See ImportedSession.columns. */
export const CARRIED_COLUMNS = [
  "extension_data",
  "session_type",
  "cache_read_tokens",
  "cache_write_tokens",
  "accumulated_cache_read_tokens",
  "accumulated_cache_write_tokens",
  "accumulated_cost",
  "recipe_json",
  "user_recipe_values_json",
  "provider_name",
  "model_config_json",
  "goose_mode",
  "archived_at",
  "project_id",
  "parent_session_id",
] as const;

/** A store that inserts a whole session under its own id (sessions.db or PostgreSQL); false when the id exists. */
export interface SessionImporter {
  importSession(s: ImportedSession): Promise<boolean>;
}

/** A store that hands out a whole session with its times. */
export interface SessionExporter {
  exportSession(id: string): Promise<ImportedSession | undefined>;
}

/**
 * Copies one session between stores (PostgreSQL ⇄ goose sessions.db) with its
 * id, times, metadata and messages (ids and visibility kept); an id already in
 * the target is refused, never merged or replaced.
 */
export async function copySession(from: SessionExporter, id: string, to: SessionImporter): Promise<{ id: string; messages: number }> {
  const s = await from.exportSession(id);
  if (!s) throw new NotFoundError(`session ${id} does not exist`);
  if (!(await to.importSession(s))) throw new AlreadyExistsError(`a session ${id} is already in the target database`);
  return { id, messages: s.messages.length };
}

/** Every listed session of a store, as pages of ids (goose's listed types: user and scheduled). */
export async function allSessionIds(store: { list(pageSize: number, pageToken: string): Promise<{ sessions: { id: string }[]; nextPageToken: string }> }): Promise<string[]> {
  const ids: string[] = [];
  let token = "";
  do {
    const page = await store.list(500, token);
    ids.push(...page.sessions.map((s) => s.id));
    token = page.nextPageToken;
  } while (token !== "");
  return ids;
}
