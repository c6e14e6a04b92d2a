import { stat } from "node:fs/promises";
import { join } from "node:path";
import { AlreadyExistsError, NotFoundError } from "@skein/runtime";
import { writeAtomic } from "@skein/host";
import { serializeLine } from "./goose-format/messages.js";
import type { SessionStore } from "./session-store.js";
import { toGooseContent } from "./goose-rows/content.js";

/**
 * Writes a session as `<dir>/<id>.jsonl` in goose ≤1.9's format (metadata line,
 * one message per line, tool results as arrays, which those versions read),
 * atomically; an existing file is never replaced.
 */
export async function exportSessionJsonl(store: SessionStore, id: string, dir: string): Promise<{ path: string; messages: number }> {
  const loaded = await store.load(id);
  if (!loaded) throw new NotFoundError(`session ${id} does not exist`);
  const path = join(dir, `${id}.jsonl`);
  if (await stat(path).then(() => true, () => false)) throw new AlreadyExistsError(`${path} already exists`);
  const lines = [serializeLine({ ...loaded.metadata, message_count: loaded.messages.length })];
  for (const m of loaded.messages) lines.push(serializeLine({ ...m, content: toGooseContent(m.content, "array").content }));
  await writeAtomic(path, lines.join(""));
  return { path, messages: loaded.messages.length };
}
