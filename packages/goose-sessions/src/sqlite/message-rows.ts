import type { Db } from "./connection.js";
import type { PreparedMessage } from "../goose-rows/messages.js";

// sessions.db's side of a message row (PostgreSQL's is postgres/session-rows.ts); the row encoding both share is goose-rows/.

/** Inserts through the columns the messages table has (message_id since schema 7, metadata_json since 3). */
export function insertMessage(db: Db, columns: ReadonlySet<string>, sessionId: string, p: PreparedMessage, created: number): void {
  const cols = ["session_id", "role", "content_json", "created_timestamp"];
  const vals: unknown[] = [sessionId, p.role, p.contentJson, created];
  if (columns.has("message_id")) {
    cols.push("message_id");
    vals.push(p.messageId);
  }
  if (columns.has("metadata_json")) {
    cols.push("metadata_json");
    vals.push(p.metadataJson);
  }
  db.prepare(`INSERT INTO messages (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`).run(...vals);
}
