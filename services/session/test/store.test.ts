import { copyFile, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata, message, parseMessage, textItem, toolRequestItem, toolResponseItem, unansweredToolRequests } from "@skein/goose-sessions/goose-format";
import { isValidSessionId, newSessionId, validateSessionId } from "@skein/goose-sessions";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";
import { fixturesDir, readLines } from "./support/goose-file.js";

const log = pino({ level: "silent" });
let dir: string;
let store: JsonlSessionStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-store-"));
  store = await JsonlSessionStore.open(join(dir, "sessions"), log, { syncEachMessage: false });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("session ids", () => {
  it("accepts UUIDs and goose CLI names", () => {
    for (const id of [newSessionId(), "20250728_101010", "my-session.v2"]) expect(isValidSessionId(id)).toBe(true);
  });
  it.each(["", "../x", "/", "a/b", "a\0b", "..", ".hidden", "-rf", "a\\b", "x".repeat(201)])("rejects %j with INVALID_ARGUMENT", (id) => {
    expect(() => validateSessionId(id)).toThrow(/session_id: /);
  });
});

describe("goose format", () => {
  it("keeps unknown fields and content types exactly", () => {
    const line = '{"id":"m1","role":"assistant","created":1,"content":[{"type":"frontendToolRequest","id":"t","toolCall":{"x":1}},{"type":"text","text":"hi","extra":true}],"metadata":{"userVisible":false}}';
    expect(JSON.stringify(parseMessage(line))).toBe(line);
  });
  it.each([
    ["not json {", /not JSON/],
    ['{"role":"system","created":1,"content":[]}', /role/],
    ['{"role":"user","created":"x","content":[]}', /created/],
    ['{"role":"user","created":1,"content":[{"text":"no type"}]}', /content/],
  ])("rejects %s", (line, why) => {
    expect(() => parseMessage(line)).toThrow(why);
  });
  it("finds tool requests that have no response", () => {
    const a = message("assistant", [toolRequestItem("a", { status: "success", value: { name: "x__y", arguments: {} } }), toolRequestItem("b", { status: "error", error: "bad" })]);
    const u = message("user", [toolResponseItem("a", { status: "success", value: [] })]);
    expect(unansweredToolRequests(a, [u]).map((c) => c.id)).toEqual(["b"]);
  });
});

describe("JSONL store", () => {
  it("creates 0600 files in a 0700 directory with goose's metadata line", async () => {
    const { id } = await store.create(defaultMetadata("/tmp", "d"));
    expect(isValidSessionId(id) && /^[0-9a-f-]{36}$/.test(id)).toBe(true);
    expect((await stat(store.dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(store.dir, `${id}.jsonl`))).mode & 0o777).toBe(0o600);
    const [meta] = await readLines(join(store.dir, `${id}.jsonl`));
    expect(meta).toEqual(defaultMetadata("/tmp", "d"));
  });

  it("appends messages and rewrites metadata atomically without losing them", async () => {
    const { id } = await store.create(defaultMetadata("/tmp", ""));
    for (let i = 0; i < 5; i++) await store.append(id, message("user", [textItem(`m${i}`)], 100 + i));
    await store.writeMetadata(id, { ...defaultMetadata("/tmp", "after"), message_count: 5 });
    await store.append(id, message("assistant", [textItem("m5")], 200));
    const lines = await readLines(join(store.dir, `${id}.jsonl`));
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatchObject({ description: "after", message_count: 5 });
    expect(lines.slice(1).map((l) => (l.content as { text: string }[])[0]!.text)).toEqual(["m0", "m1", "m2", "m3", "m4", "m5"]);
    expect((await readdir(store.dir)).filter((n) => n.startsWith("."))).toEqual([]);
  });

  it("skips a corrupt line with a warning and keeps it in the file through a rewrite", async () => {
    await copyFile(join(fixturesDir, "20250801_093000.jsonl"), join(store.dir, "20250801_093000.jsonl"));
    const loaded = await store.load("20250801_093000");
    expect(loaded!.corruptLines).toBe(1);
    expect(loaded!.messages).toHaveLength(4);
    expect(loaded!.metadata.recipe).toEqual({ title: "demo", instructions: "be brief" });
    await store.writeMetadata("20250801_093000", { ...loaded!.metadata, description: "renamed" });
    const text = await readFile(join(store.dir, "20250801_093000.jsonl"), "utf8");
    expect(text).toContain("this line was damaged by a disk error {\n");
    const original = (await readFile(join(fixturesDir, "20250801_093000.jsonl"), "utf8")).split("\n").slice(1);
    expect(text.split("\n").slice(1)).toEqual(original);
    expect(JSON.parse(text.split("\n")[0]!)).toMatchObject({ description: "renamed", recipe: { title: "demo" } });
  });

  it("starts appends on a fresh line after a torn last line", async () => {
    const { id } = await store.create(defaultMetadata("/tmp", ""));
    const path = join(store.dir, `${id}.jsonl`);
    await writeFile(path, '{"id":null,"role":"user","created":1,"content":[{"type":"te', { flag: "a" });
    await store.append(id, message("user", [textItem("after crash")]));
    const loaded = await store.load(id);
    expect(loaded!.corruptLines).toBe(1);
    expect(loaded!.messages.map((m) => (m.content[0] as unknown as { text: string }).text)).toEqual(["after crash"]);
  });

  it("reads a goose file with no metadata line and adds one on rewrite", async () => {
    const line = '{"id":null,"role":"user","created":5,"content":[{"type":"text","text":"old"}]}\n';
    await writeFile(join(store.dir, "legacy.jsonl"), line);
    expect((await store.load("legacy"))!.messages).toHaveLength(1);
    await store.writeMetadata("legacy", defaultMetadata("/w", ""));
    const text = await readFile(join(store.dir, "legacy.jsonl"), "utf8");
    expect(text).toBe(`${JSON.stringify(defaultMetadata("/w", ""))}\n${line}`);
  });

  it("pages newest first with opaque tokens", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { id } = await store.create(defaultMetadata("/tmp", ""));
      ids.push(id);
      const t = new Date(1_700_000_000_000 + i * 1000);
      await utimes(join(store.dir, `${id}.jsonl`), t, t);
    }
    await writeFile(join(store.dir, "notes.txt"), "not a session");
    const seen: string[] = [];
    let token = "";
    do {
      const page = await store.list(2, token);
      seen.push(...page.sessions.map((s) => s.id));
      token = page.nextPageToken;
    } while (token !== "");
    expect(seen).toEqual([...ids].reverse());
    await expect(store.list(2, "garbage")).rejects.toThrow(/page_token/);
  });

  it("deletes, and will not recreate a deleted file by appending", async () => {
    const { id } = await store.create(defaultMetadata("/tmp", ""));
    expect(await store.delete(id)).toBe(true);
    expect(await store.delete(id)).toBe(false);
    await expect(store.append(id, message("user", [textItem("x")]))).rejects.toThrow(/ENOENT/);
    expect(await store.load(id)).toBeUndefined();
  });
});
