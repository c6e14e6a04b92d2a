// SessionStore.fingerprint: kept across the store's own writes, changed by any other writer
// (goose on the same sessions.db through its own connection, goose appending to or replacing a JSONL file).
import { appendFile, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata, message, textItem } from "@skein/goose-sessions/goose-format";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";
import { SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { openLikeGoose } from "./support/goose-db.js";

const log = pino({ level: "silent" });
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-fingerprint-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("sqlite fingerprint", () => {
  it("stays across skein's own appends and metadata updates; another connection's commit changes it", async () => {
    const store = await SqliteSessionStore.open(dir, log, { syncEachMessage: false });
    const goose = openLikeGoose(store.path);
    try {
      const { id } = await store.create(defaultMetadata(dir, "d"));
      const f0 = await store.fingerprint(id);
      await store.append(id, message("user", [textItem("hi")]));
      await store.updateMetadata(id, (m) => ({ ...m, total_tokens: 5 }));
      expect(await store.fingerprint(id)).toBe(f0);
      goose.prepare("UPDATE sessions SET name = 'renamed by goose' WHERE id = ?").run(id);
      const f1 = await store.fingerprint(id);
      expect(f1).not.toBe(f0);
      // A message goose cannot read (left out) also changes it: the copy in memory would differ from the rows.
      await store.append(id, message("user", [{ type: "skeinOnlyContent" } as never]));
      expect(await store.fingerprint(id)).not.toBe(f1);
      expect(await store.fingerprint("20990101_1")).toBeUndefined();
    } finally {
      goose.close();
      await store.close();
    }
  });
});

describe("JSONL fingerprint", () => {
  it("stays across the store's own appends and metadata rewrites", async () => {
    const store = await JsonlSessionStore.open(dir, log, { syncEachMessage: false });
    try {
      const { id } = await store.create(defaultMetadata(dir, "d"));
      const f0 = await store.fingerprint(id);
      await store.append(id, message("user", [textItem("hi")]));
      await store.append(id, message("assistant", [textItem("hello")]));
      await store.updateMetadata(id, (m) => ({ ...m, total_tokens: 5 }));
      await store.append(id, message("user", [textItem("again")]));
      expect(await store.fingerprint(id)).toBe(f0);
    } finally {
      await store.close();
    }
  });

  it("changes when goose appends a line, also between two of the store's appends, or replaces the file", async () => {
    const store = await JsonlSessionStore.open(dir, log, { syncEachMessage: false });
    try {
      const { id } = await store.create(defaultMetadata(dir, "d"));
      const path = join(dir, `${id}.jsonl`);
      const line = `${JSON.stringify({ id: null, role: "user", created: 1, content: [{ type: "text", text: "from goose" }] })}\n`;
      const f0 = await store.fingerprint(id);
      await appendFile(path, line);
      const f1 = await store.fingerprint(id);
      expect(f1).not.toBe(f0);
      await store.append(id, message("user", [textItem("mine")]));
      await appendFile(path, line);
      await store.append(id, message("user", [textItem("mine again")]));
      const f2 = await store.fingerprint(id);
      expect(f2).not.toBe(f1);
      const tmp = join(dir, "goose-tmp");
      await writeFile(tmp, `${JSON.stringify(defaultMetadata(dir, "rewritten by goose"))}\n`);
      await rename(tmp, path);
      expect(await store.fingerprint(id)).not.toBe(f2);
    } finally {
      await store.close();
    }
  });
});
