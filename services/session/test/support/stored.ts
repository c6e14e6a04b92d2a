import { join } from "node:path";
import { expectGooseReadable, openLikeGoose } from "./goose-db.js";
import { expectGooseFile } from "./goose-file.js";
import type { Harness, StoreKind } from "./harness.js";

export const STORES: readonly StoreKind[] = ["goose-jsonl", "goose-sqlite"];

/**
 * A session's messages as goose would load them from the store the harness
 * runs on, after checking them against goose's rules for that store (the
 * JSONL file line by line, or the sessions.db rows).
 */
export async function storedMessages(h: Harness, store: StoreKind, sessionId: string): Promise<Record<string, unknown>[]> {
  if (store === "goose-jsonl") return expectGooseFile(join(h.sessionsDir, `${sessionId}.jsonl`));
  const db = openLikeGoose(join(h.sessionsDir, "sessions.db"));
  try {
    return expectGooseReadable(db, sessionId).map(({ id, role, created, content }) => ({ id, role, created, content }));
  } finally {
    db.close();
  }
}
