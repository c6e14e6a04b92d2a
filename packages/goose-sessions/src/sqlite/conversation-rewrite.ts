import type { GooseMessage } from "../goose-format/messages.js";
import { metadataJson, newMessageId, type PreparedMessage } from "../goose-rows/messages.js";
import { insertMessage } from "./message-rows.js";
import type { Row } from "../goose-rows/rows.js";
import type { Db } from "./connection.js";

/**
 * A session's messages rewritten the way current goose records compaction
 * (save_compacted_conversation), inside the caller's write transaction: no
 * message is deleted. Rows keep their content; only their visibility flags
 * change. Messages new to the database are appended; a stored message that
 * the new conversation places after a new one (the recent turn kept after the
 * summary) is hidden where it was and appended again with the same content,
 * so the order `created_timestamp, id` matches the conversation.
 * `prepared`: each message's row form (undefined for one goose cannot store).
 */
export function rewriteMessages(
  db: Db,
  messageColumns: ReadonlySet<string>,
  id: string,
  messages: readonly GooseMessage[],
  prepared: ReadonlyMap<GooseMessage, PreparedMessage | undefined>,
): void {
  const stored = new Map<string, Row>();
  if (messageColumns.has("message_id")) {
    for (const r of db.prepare("SELECT id, message_id, content_json, metadata_json FROM messages WHERE session_id = ?").all(id) as Row[]) {
      if (typeof r.message_id === "string") stored.set(r.message_id, r);
    }
  }
  const now = Math.floor(Date.now() / 1000);
  let latest = (db.prepare("SELECT MAX(created_timestamp) AS t FROM messages WHERE session_id = ?").get(id) as { t: number | null }).t ?? now;
  const append = (p: PreparedMessage) => {
    latest = Math.max(latest, now);
    insertMessage(db, messageColumns, id, p, latest);
  };
  let appending = false;
  for (const m of messages) {
    const old = m.id !== null ? stored.get(m.id) : undefined;
    if (!old) {
      appending = true;
      const p = prepared.get(m);
      if (p) append(p);
      continue;
    }
    if (!appending) {
      setVisibility(db, messageColumns, old, m.metadata);
      continue;
    }
    setVisibility(db, messageColumns, old, { userVisible: false, agentVisible: false });
    append({ messageId: newMessageId(id), role: m.role, contentJson: String(old.content_json), metadataJson: metadataJson(m), created: latest, dropped: [] });
  }
}

/** Sets a stored message's userVisible/agentVisible flags to `meta`'s, keeping its other metadata; no write when they already match. */
function setVisibility(db: Db, messageColumns: ReadonlySet<string>, row: Row, meta: unknown): void {
  if (!messageColumns.has("metadata_json")) return;
  const want = meta !== null && typeof meta === "object" ? (meta as Record<string, unknown>) : {};
  let stored: Record<string, unknown> = {};
  try {
    const v = JSON.parse(String(row.metadata_json)) as unknown;
    if (v !== null && typeof v === "object" && !Array.isArray(v)) stored = v as Record<string, unknown>;
  } catch {
    // unparsable metadata reads as both flags true in goose; replaced below only if the flags change
  }
  const userVisible = want.userVisible !== false;
  const agentVisible = want.agentVisible !== false;
  if ((stored.userVisible !== false) === userVisible && (stored.agentVisible !== false) === agentVisible) return;
  db.prepare("UPDATE messages SET metadata_json = ? WHERE id = ?").run(JSON.stringify({ ...stored, userVisible, agentVisible }), row.id);
}
