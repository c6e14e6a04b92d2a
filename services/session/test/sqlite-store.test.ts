import { statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type Database from "better-sqlite3";
import pino from "pino";
import { beforeEach, describe, expect, it } from "vitest";
import { COMPACTION_MARKER } from "../src/agent-loop/compaction.js";
import { defaultMetadata, message, textItem, toolRequestItem, toolResponseItem, markDescriptionUserSet, sessionExtensions, withSessionExtensions, type GooseMessage } from "@skein/goose-sessions/goose-format";
import { DB_NAME, SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { buildFreshGooseDb, buildUpgradedGooseDb, expectGooseReadable, insertGooseSession, openLikeGoose, rawMessageRows, schemaOf, weatherConversation } from "./support/goose-db.js";
import { useSqliteStore } from "./support/sqlite-store-fixture.js";

const fx = useSqliteStore();
const today = () => new Date().toISOString().slice(0, 10).replaceAll("-", "");
const ext = { name: "notes", cmd: "node", args: ["server.js"], env: { A: "1" }, timeoutSeconds: 30 };
const builtin = { type: "builtin", name: "developer", description: "", display_name: "Developer", timeout: 300, bundled: true, available_tools: [] };
const gooseStdio = { type: "stdio", name: "weather_extension", description: "weather", cmd: "uvx", args: ["weather-mcp"], envs: {}, env_keys: ["WEATHER_KEY"], timeout: 60, bundled: null, available_tools: [] };

describe("a database skein creates", () => {
  it("is exactly what goose 1.47 creates: tables, indexes and one schema_version row 16, in WAL mode", async () => {
    await fx.open();
    await fx.store!.close();
    fx.store = undefined;
    const ours = fx.goose(openLikeGoose(join(fx.dir, DB_NAME)));
    await mkdir(join(fx.dir, "g"));
    const theirs = fx.goose(buildFreshGooseDb(join(fx.dir, "g", DB_NAME)));
    expect(schemaOf(ours)).toEqual(schemaOf(theirs));
    expect(ours.prepare("SELECT version FROM schema_version").all()).toEqual([{ version: 16 }]);
    expect(ours.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(ours.pragma("integrity_check", { simple: true })).toBe("ok");
  });

  it("runs on a SQLite with goose's WAL-reset fix (goose bundles 3.51.3)", async () => {
    await fx.open();
    const [major, minor, patch] = fx.store!.sqliteVersion.split(".").map(Number) as [number, number, number];
    expect(major * 1_000_000 + minor * 1_000 + patch).toBeGreaterThanOrEqual(3_051_003);
  });

  it("allocates goose's ids YYYYMMDD_N after the day's highest, goose's own included", async () => {
    await fx.open();
    const a = await fx.store!.create(defaultMetadata("/w", ""));
    expect(a.id).toBe(`${today()}_1`);
    const db = fx.goose(openLikeGoose(fx.store!.path));
    insertGooseSession(db, { id: `${today()}_9` });
    insertGooseSession(db, { id: "20250325_200615" });
    const ids = await Promise.all([1, 2, 3].map(() => fx.store!.create(defaultMetadata("/w", "")).then((s) => s.id)));
    expect(ids.sort()).toEqual([`${today()}_10`, `${today()}_11`, `${today()}_12`]);
    for (const id of [a.id, ...ids]) expectGooseReadable(db, id);
  });

  it("stores a session's own extensions as goose stdio ExtensionConfig entries and the caller's description as a user-set name", async () => {
    await fx.open();
    const s = await fx.store!.create(markDescriptionUserSet(withSessionExtensions(defaultMetadata("/w", "Release notes"), [ext])));
    const db = fx.goose(openLikeGoose(fx.store!.path));
    const row = db.prepare("SELECT name, user_set_name, session_type, goose_mode, extension_data FROM sessions WHERE id = ?").get(s.id) as Record<string, unknown>;
    expect(row).toMatchObject({ name: "Release notes", user_set_name: 1, session_type: "user", goose_mode: "auto" });
    expect(JSON.parse(row.extension_data as string)).toEqual({
      "enabled_extensions.v0": {
        extensions: [{ type: "stdio", name: "notes", description: "", cmd: "node", args: ["server.js"], envs: { A: "1" }, env_keys: [], timeout: 30, available_tools: [] }],
      },
    });
    expect(sessionExtensions((await fx.store!.info(s.id))!.metadata)).toEqual([ext]);
  });
});

describe("messages skein writes", () => {
  it("follow goose's read rules: content array only, seconds, both visibility flags, a message id, CallToolResult values", async () => {
    await fx.open();
    const { id } = await fx.store!.create(defaultMetadata("/w", ""));
    const req = message("assistant", [textItem("checking"), toolRequestItem("call_1", { status: "success", value: { name: "dev__shell", arguments: { command: "ls" } } })]);
    const res = message("user", [toolResponseItem("call_1", { status: "success", value: [{ type: "text", text: "a\nb" }] })]);
    for (const m of [message("user", [textItem("list files")]), req, res]) await fx.store!.append(id, m);
    expect(req.id).toMatch(new RegExp(`^msg_${id}_[0-9a-f-]{36}$`));
    const db = fx.goose(openLikeGoose(fx.store!.path));
    const rows = expectGooseReadable(db, id, { toolValue: "object" });
    expect(rows.map((r) => r.role)).toEqual(["user", "assistant", "user"]);
    expect(rows[2]!.content).toEqual([{ type: "toolResponse", id: "call_1", toolResult: { status: "success", value: { content: [{ type: "text", text: "a\nb" }], isError: false } } }]);
    expect(rows[0]!.metadata).toEqual({ userVisible: true, agentVisible: true });
    const loaded = await fx.store!.load(id);
    expect(loaded!.messages.map((m) => m.content[0]!.type)).toEqual(["text", "text", "toolResponse"]);
  });

  it("never hold a content type goose cannot load: old markers are converted, unknown ones left out", async () => {
    await fx.open();
    const { id } = await fx.store!.create(defaultMetadata("/w", ""));
    await fx.store!.append(id, message("assistant", [{ type: "summarizationRequested", msg: "compacted" }]));
    await fx.store!.append(id, message("assistant", [textItem("kept"), { type: "futureThing", x: 1 }]));
    await fx.store!.append(id, message("assistant", [{ type: "contextLengthExceeded", msg: "too long" }]));
    const rows = expectGooseReadable(fx.goose(openLikeGoose(fx.store!.path)), id);
    expect(rows.map((r) => r.content)).toEqual([[{ type: "systemNotification", notificationType: "inlineMessage", msg: "compacted" }], [{ type: "text", text: "kept" }]]);
  });

  it("write arrays of tool content for a goose ≤1.16 database (schema 5) and read both forms", async () => {
    const db = fx.goose(
      buildUpgradedGooseDb(join(fx.dir, DB_NAME), (d) => d.prepare("INSERT INTO sessions (id, description, working_dir) VALUES ('20251001_1', 'old', '/w')").run()),
    );
    db.exec("DELETE FROM schema_version WHERE version > 5");
    await fx.open();
    expect(fx.store!.toolResultForm).toBe("array");
    await fx.store!.append("20251001_1", message("user", [toolResponseItem("c", { status: "success", value: { content: [{ type: "text", text: "obj" }], isError: false } })]));
    const rows = rawMessageRows(db, "20251001_1");
    expect(JSON.parse(rows[0]!.content_json as string)[0].toolResult.value).toEqual([{ type: "text", text: "obj" }]);
  });
});

describe("a database goose upgraded step by step from version 1", () => {
  let db: Database.Database;
  const weather = weatherConversation();
  beforeEach(() => {
    db = fx.goose(
      buildUpgradedGooseDb(join(fx.dir, DB_NAME), (d) => {
        // goose 1.10 (schema 1): description is the title; messages without ids or metadata.
        d.prepare("INSERT INTO sessions (id, description, working_dir, extension_data, accumulated_total_tokens) VALUES (?, ?, ?, ?, ?)").run("20251002_1", "weather in Berlin", "/home/u", "{}", 2435);
        for (const m of weather.slice(0, 3)) {
          d.prepare("INSERT INTO messages (session_id, role, content_json, created_timestamp) VALUES (?, ?, ?, ?)").run("20251002_1", m.role, JSON.stringify(m.content), m.created);
        }
      }),
    );
  });

  it("has the upgraded layout: other column order, nullable name, the threads leftovers, a row per step", () => {
    const cols = (db.prepare("SELECT name, \"notnull\" FROM pragma_table_info('sessions')").all() as { name: string; notnull: number }[]);
    expect(cols[1]!.name).toBe("description");
    expect(cols.find((c) => c.name === "name")!.notnull).toBe(0);
    expect(cols.some((c) => c.name === "thread_id")).toBe(true);
    expect((db.prepare("SELECT name FROM sqlite_master WHERE name IN ('threads', 'thread_messages')").all() as unknown[]).length).toBe(2);
    expect((db.prepare("SELECT version FROM schema_version ORDER BY version").all() as { version: number }[]).map((r) => r.version)).toEqual([...Array(16).keys()].map((i) => i + 1));
  });

  it("is read through its columns by name; a reply keeps goose's rows byte-identical and every other column as it was", async () => {
    db.prepare("UPDATE sessions SET recipe_json = ?, goose_mode = 'smart_approve', provider_name = 'anthropic', model_config_json = ?, cache_read_tokens = 7, accumulated_cost = 0.25 WHERE id = '20251002_1'").run(
      JSON.stringify({ title: "t", instructions: "i" }),
      JSON.stringify({ model_name: "claude-sonnet-4", context_limit: 200000 }),
    );
    const before = rawMessageRows(db, "20251002_1");
    const sessionBefore = db.prepare("SELECT * FROM sessions WHERE id = '20251002_1'").get() as Record<string, unknown>;
    await fx.open();
    const page = await fx.store!.list(10, "");
    expect(page.sessions.map((s) => [s.id, s.metadata.description])).toEqual([["20251002_1", "weather in Berlin"]]);
    const loaded = await fx.store!.load("20251002_1");
    expect(loaded!.messages.map((m) => m.id)).toEqual(before.map((r) => r.message_id));
    await fx.store!.append("20251002_1", message("user", [textItem("and in Paris?")]));
    await fx.store!.updateMetadata("20251002_1", (m) => ({ ...m, total_tokens: 50, accumulated_total_tokens: (m.accumulated_total_tokens ?? 0) + 50 }));
    expect(rawMessageRows(db, "20251002_1").slice(0, 3)).toEqual(before);
    const after = db.prepare("SELECT * FROM sessions WHERE id = '20251002_1'").get() as Record<string, unknown>;
    const changed = Object.keys(after).filter((k) => k !== "updated_at" && JSON.stringify(after[k]) !== JSON.stringify(sessionBefore[k]));
    expect(changed.sort()).toEqual(["accumulated_total_tokens", "total_tokens"]);
    expect(after.updated_at as string >= (sessionBefore.updated_at as string)).toBe(true);
    expect(after.accumulated_total_tokens).toBe(2485);
    expectGooseReadable(db, "20251002_1", { isOurs: (r) => !before.some((b) => b.id === r.id) });
  });
});

describe("a goose 1.47 session skein continues", () => {
  let db: Database.Database;
  const weather = weatherConversation();
  beforeEach(async () => {
    db = fx.goose(buildFreshGooseDb(join(fx.dir, DB_NAME)));
    insertGooseSession(db, {
      id: "20261101_3",
      name: "Berlin weather",
      extensionData: { "enabled_extensions.v0": { extensions: [builtin, gooseStdio] }, "todo.v0": { content: "- check" } },
      messages: weather,
    });
    await fx.open();
  });

  it("starts goose's stdio extensions, leaves built-ins and other keys untouched when extensions change", async () => {
    const info = await fx.store!.info("20261101_3");
    expect(sessionExtensions(info!.metadata)).toEqual([{ name: "weather_extension", cmd: "uvx", args: ["weather-mcp"], env: {}, timeoutSeconds: 60 }]);
    await fx.store!.updateMetadata("20261101_3", (m) => withSessionExtensions(m, [...sessionExtensions(m), ext]));
    const data = JSON.parse((db.prepare("SELECT extension_data FROM sessions WHERE id = '20261101_3'").get() as { extension_data: string }).extension_data);
    expect(data["todo.v0"]).toEqual({ content: "- check" });
    expect(data["enabled_extensions.v0"].extensions[0]).toEqual(builtin);
    expect(data["enabled_extensions.v0"].extensions[1]).toEqual({ ...gooseStdio, timeout: 60, envs: {} });
    expect(data["enabled_extensions.v0"].extensions[2]).toMatchObject({ type: "stdio", name: "notes" });
  });

  it("names a goose extension with a display name the way goose prefixes its tools, and keeps goose's name when writing back", async () => {
    const display = { ...gooseStdio, name: "My Weather" };
    db.prepare("UPDATE sessions SET extension_data = ? WHERE id = '20261101_3'").run(JSON.stringify({ "enabled_extensions.v0": { extensions: [display] } }));
    const m = (await fx.store!.info("20261101_3"))!.metadata;
    expect(sessionExtensions(m).map((e) => e.name)).toEqual(["My_Weather"]);
    await fx.store!.updateMetadata("20261101_3", (cur) => withSessionExtensions(cur, [...sessionExtensions(cur), ext]));
    const data = JSON.parse((db.prepare("SELECT extension_data FROM sessions WHERE id = '20261101_3'").get() as { extension_data: string }).extension_data);
    expect(data["enabled_extensions.v0"].extensions.map((e: { name: string }) => e.name)).toEqual(["My Weather", "notes"]);
  });

  it("puts a generated description into name unless the user set it", async () => {
    await fx.store!.updateMetadata("20261101_3", (m) => ({ ...m, description: "Weather lookup" }));
    expect(db.prepare("SELECT name, description FROM sessions WHERE id = '20261101_3'").get()).toEqual({ name: "Weather lookup", description: "" });
  });

  it("records compaction as goose does: visibility flags, no deleted row, no summarizationRequested", async () => {
    const before = rawMessageRows(db, "20261101_3");
    await fx.store!.append("20261101_3", message("user", [textItem("and tomorrow?")]));
    const loaded = await fx.store!.load("20261101_3");
    const all = loaded!.messages;
    const userOnly = { userVisible: true, agentVisible: false };
    const agentOnly = { userVisible: false, agentVisible: true };
    const recent = all.slice(-1);
    const compacted: GooseMessage[] = [
      ...all.slice(0, -1).map((m) => ({ ...m, metadata: { ...(m.metadata as object), ...userOnly } })),
      { ...message("assistant", [{ type: "summarizationRequested", msg: COMPACTION_MARKER }]), metadata: userOnly },
      { ...message("user", [textItem("summary: Berlin is cloudy")]), metadata: agentOnly },
      { ...message("assistant", [textItem("continuing")]), metadata: agentOnly },
      ...recent,
    ];
    await fx.store!.rewrite("20261101_3", (m) => m, compacted);
    const rows = expectGooseReadable(db, "20261101_3", { isOurs: (r) => !before.some((b) => b.id === r.id) });
    const agentView = rows.filter((r) => r.metadata?.agentVisible !== false).map((r) => r.content);
    expect(agentView).toEqual([[{ type: "text", text: "summary: Berlin is cloudy" }], [{ type: "text", text: "continuing" }], [{ type: "text", text: "and tomorrow?" }]]);
    const userView = rows.filter((r) => r.metadata?.userVisible !== false).map((r) => r.content[0]!.type);
    expect(userView).toEqual(["text", "toolRequest", "toolResponse", "text", "systemNotification", "text"]);
    // goose's rows keep their content and ids; only metadata_json changed.
    const now = rawMessageRows(db, "20261101_3");
    for (const b of before) expect(now.find((r) => r.id === b.id)).toMatchObject({ message_id: b.message_id, content_json: b.content_json, created_timestamp: b.created_timestamp });
  });

  it("puts back a run's messages that a concurrent goose compaction (replace_conversation) deleted", async () => {
    const gooseRows = rawMessageRows(db, "20261101_3");
    await fx.store!.append("20261101_3", message("user", [textItem("skein turn")]));
    await fx.store!.append("20261101_3", message("assistant", [textItem("skein answer")]));
    // goose's replace_conversation: delete every row of the session, re-insert goose's in-memory copy.
    db.transaction(() => {
      db.prepare("DELETE FROM messages WHERE session_id = '20261101_3'").run();
      for (const r of gooseRows) {
        db.prepare("INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) VALUES (?, ?, ?, ?, ?, ?)").run(
          r.message_id,
          r.session_id,
          r.role,
          r.content_json,
          r.created_timestamp,
          r.metadata_json,
        );
      }
    }).immediate();
    expect(rawMessageRows(db, "20261101_3")).toHaveLength(gooseRows.length);
    await fx.store!.updateMetadata("20261101_3", (m) => m);
    const rows = expectGooseReadable(db, "20261101_3", { isOurs: (r) => !gooseRows.some((g) => g.message_id === r.message_id) });
    expect(rows.slice(gooseRows.length).map((r) => r.content)).toEqual([[{ type: "text", text: "skein turn" }], [{ type: "text", text: "skein answer" }]]);
  });

  it("looks for a run's lost messages only when another connection committed since the run's first one went in", async () => {
    // The statements the store prepares (its connection's statement cache is the one way in).
    const facade = (fx.store as unknown as { conn: { facade: { prepare(sql: string): unknown } } }).conn.facade;
    const prepare = facade.prepare.bind(facade);
    const lookups: string[] = [];
    facade.prepare = (sql: string) => {
      if (sql.includes("message_id IN")) lookups.push(sql);
      return prepare(sql);
    };
    await fx.store!.append("20261101_3", message("user", [textItem("one")]));
    await fx.store!.append("20261101_3", message("assistant", [textItem("two")]));
    await fx.store!.updateMetadata("20261101_3", (m) => m);
    expect(lookups).toHaveLength(0);
    await fx.store!.append("20261101_3", message("user", [textItem("three")]));
    // Another process commits something (to any session): data_version moves, the lookup runs and finds the row.
    db.prepare("UPDATE sessions SET updated_at = datetime(updated_at, '+1 second') WHERE id = '20261101_3'").run();
    await fx.store!.updateMetadata("20261101_3", (m) => m);
    expect(lookups).toHaveLength(1);
    expect(rawMessageRows(db, "20261101_3").filter((r) => String(r.content_json).includes('"three"'))).toHaveLength(1);
  });

  it("knows its fingerprint right after its own metadata update, once, and as that update saw the database", async () => {
    const id = "20261101_3";
    expect(fx.store!.ownFingerprint(id)).toBeUndefined();
    const before = await fx.store!.fingerprint(id);
    await fx.store!.append(id, message("user", [textItem("one")]));
    await fx.store!.updateMetadata(id, (m) => m);
    // Only its own writes since: what a read would answer, without the read; asked again, it no longer vouches.
    expect(fx.store!.ownFingerprint(id)).toBe(before);
    expect(fx.store!.ownFingerprint(id)).toBeUndefined();
    // Another process commits before the update: the update saw it, so the answer moves as a read's does.
    db.prepare(`UPDATE sessions SET updated_at = datetime(updated_at, '+1 second') WHERE id = '${id}'`).run();
    await fx.store!.updateMetadata(id, (m) => m);
    const own = fx.store!.ownFingerprint(id);
    expect(own).not.toBe(before);
    expect(own).toBe(await fx.store!.fingerprint(id));
  });

  it("stores a reply's last message and the run's closing update in one commit, both or neither", async () => {
    const id = "20261101_3";
    // Each commit appends the pages it changed to the WAL: the sessions row's pages go in once, not twice.
    const walBytes = () => statSync(join(fx.dir, `${DB_NAME}-wal`)).size;
    const before = rawMessageRows(db, id).length;
    let w = walBytes();
    await fx.store!.append(id, message("assistant", [textItem("apart")]));
    await fx.store!.updateMetadata(id, (m) => ({ ...m, total_tokens: 7 }));
    const apart = walBytes() - w;
    w = walBytes();
    const last = message("assistant", [textItem("together")]);
    const written = await fx.store!.appendClosing(id, last, (m) => ({ ...m, total_tokens: 42 }));
    expect(walBytes() - w).toBeLessThan(apart);
    expect(written).toMatchObject({ total_tokens: 42, message_count: before + 2 });
    expect(last.id).toMatch(new RegExp(`^msg_${id}_`));
    const rows = expectGooseReadable(db, id, { isOurs: (r) => r.message_id === last.id });
    expect(rows.at(-1)!.content).toEqual([{ type: "text", text: "together" }]);
    expect(db.prepare("SELECT total_tokens FROM sessions WHERE id = ?").get(id)).toEqual({ total_tokens: 42 });
    // An update that throws takes its message with it.
    await expect(fx.store!.appendClosing(id, message("assistant", [textItem("never")]), () => { throw new Error("no"); })).rejects.toThrow("no");
    expect(rawMessageRows(db, id)).toHaveLength(before + 2);
  });

  it("closes a run with the message count the caller knows, without counting the session's rows", async () => {
    const id = "20261101_3";
    const before = rawMessageRows(db, id).length;
    const seen: number[] = [];
    // Without a count the store counts the rows; with one, the update sees the caller's (the store does not count).
    await fx.store!.appendClosing(id, message("assistant", [textItem("counted")]), (m) => (seen.push(m.message_count), m));
    await fx.store!.appendClosing(id, message("assistant", [textItem("told")]), (m) => (seen.push(m.message_count), m), 1_000);
    expect(seen).toEqual([before + 1, 1_000]);
    expect(rawMessageRows(db, id)).toHaveLength(before + 2);
  });

  it("keeps working on a database newer than it knows, through the columns it knows", async () => {
    await fx.store!.close();
    db.exec("ALTER TABLE sessions ADD COLUMN future_column TEXT DEFAULT 'x'");
    db.prepare("INSERT INTO schema_version (version) VALUES (17)").run();
    const warnings: unknown[] = [];
    const spy = pino({ level: "warn" }, { write: (l: string) => void warnings.push(JSON.parse(l)) });
    fx.store = await SqliteSessionStore.open(fx.dir, spy, { syncEachMessage: false });
    expect(warnings).toMatchObject([{ msg: expect.stringMatching(/newer than the goose schema/), schemaVersion: 17 }]);
    const s = await fx.store.create(defaultMetadata("/w", ""));
    await fx.store.append(s.id, message("user", [textItem("hi")]));
    expect(db.prepare("SELECT future_column FROM sessions WHERE id = ?").get(s.id)).toEqual({ future_column: "x" });
  });
});
