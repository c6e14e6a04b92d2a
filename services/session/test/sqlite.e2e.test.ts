import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import type Database from "better-sqlite3";
import { session as pb } from "@skein/proto";
import { call, collect, gate, openaiCompletion, openaiText, openaiToolCalls, rejection, startService } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildFreshGooseDb, expectGooseReadable, insertGooseSession, openLikeGoose, rawMessageRows, weatherConversation } from "./support/goose-db.js";
import { fixtureEntry } from "./extensions/helpers.js";
import { listTools, stats } from "./support/extensions.js";
import { createSession, finishReason, getSession, hangUp, readUntil, reply, startHarness, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;
const GOOSE_ID = "20250101_4";
const goosesStdio = { type: "stdio", name: "fixture", description: "", cmd: process.execPath, args: [fixtureEntry], envs: {}, env_keys: [], timeout: 300, bundled: null, available_tools: [] };
const builtin = { type: "builtin", name: "developer", description: "", display_name: "Developer", timeout: 300, bundled: true, available_tools: [] };

/** A sessions dir holding a goose 1.47 database with one goose session, the service on it (default store). */
async function withGooseSession(): Promise<{ h: Harness; root: string; db: Database.Database }> {
  const root = await mkdtemp(join(tmpdir(), "skein-gdb-"));
  const sessionsDir = join(root, "sessions");
  await mkdir(sessionsDir);
  const db = buildFreshGooseDb(join(sessionsDir, "sessions.db"));
  insertGooseSession(db, {
    id: GOOSE_ID,
    name: "Berlin weather",
    extensionData: { "enabled_extensions.v0": { extensions: [builtin, goosesStdio] } },
    columns: { goose_mode: "smart_approve", provider_name: "anthropic", model_config_json: '{"model_name":"claude-sonnet-4"}', accumulated_total_tokens: 2435 },
    messages: weatherConversation(),
  });
  db.prepare("UPDATE sessions SET created_at = '2025-01-01 10:00:00', updated_at = '2025-01-01 10:05:00' WHERE id = ?").run(GOOSE_ID);
  const h = await startHarness({}, { store: "goose-sqlite", sessionsDir });
  return { h, root, db };
}

describe("goose-sqlite store, end to end", () => {
  let h: Harness;
  let root: string;
  let db: Database.Database;
  beforeAll(async () => {
    ({ h, root, db } = await withGooseSession());
  });
  afterAll(async () => {
    db?.close();
    await h?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("creates sessions under goose ids, persists a reply in rows goose reads, lists newest first with goose's sessions by name", async () => {
    const s = await createSession(h.client);
    const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
    expect(s.id).toMatch(new RegExp(`^${day}_\\d+$`));
    h.model.enqueue({ events: openaiText("Hello there.", { pieces: 3, usage: { prompt: 30, completion: 7 } }) });
    h.model.enqueueCompletion(openaiCompletion("Greeting"));
    const events = await collect(reply(h.client, s.id, "say hello"));
    expect(finishReason(events)).toBe(STOP);
    const announced = events.flatMap((e) => (e.event?.$case === "message" ? [e.event.value.message!.id] : []));
    const rows = expectGooseReadable(db, s.id);
    expect(rows.map((r) => r.id)).toEqual(announced);
    expect(rows.map((r) => [r.role, r.content])).toEqual([
      ["user", [{ type: "text", text: "say hello" }]],
      ["assistant", [{ type: "text", text: "Hello there." }]],
    ]);
    expect(db.prepare("SELECT name, user_set_name, total_tokens, accumulated_total_tokens FROM sessions WHERE id = ?").get(s.id)).toEqual({
      name: "Greeting",
      user_set_name: 0,
      total_tokens: 37,
      accumulated_total_tokens: 37,
    });
    const got = await getSession(h.client, s.id);
    expect(got.session).toMatchObject({ id: s.id, description: "Greeting", messageCount: 2, totalTokens: 37 });
    const list = await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1 }));
    expect(list.sessions.map((x) => x.id)).toEqual([s.id]);
    const rest = await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 10, pageToken: list.nextPageToken }));
    expect(rest.sessions.map((x) => [x.id, x.description])).toContainEqual([GOOSE_ID, "Berlin weather"]);
    expect((await stats(h.client)).sessionsOnDisk).toBeGreaterThanOrEqual(2);
  });

  it("continues a goose session: starts its stdio extension, keeps goose's rows byte-identical and its settings", async () => {
    const before = rawMessageRows(db, GOOSE_ID);
    const sessionBefore = db.prepare("SELECT goose_mode, provider_name, model_config_json, extension_data FROM sessions WHERE id = ?").get(GOOSE_ID);
    expect((await listTools(h.client, GOOSE_ID)).map((t) => t.extension)).toContain("fixture");
    const got = await getSession(h.client, GOOSE_ID);
    expect(got.messages.map((m) => m.role)).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT, pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_p", name: "fixture__pid", args: {} }]) }, { events: openaiText("done") });
    // goose's smart_approve is honoured: fixture__pid is annotated read-only, so it runs without asking.
    const events = await collect(reply(h.client, GOOSE_ID, "and now the pid?"));
    expect(events.some((e) => e.event?.$case === "approvalRequired")).toBe(false);
    expect(finishReason(events)).toBe(STOP);
    const sent = h.model.requests.at(-2)!.messages as { role: string }[];
    expect(sent.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant", "user"]);
    expect(rawMessageRows(db, GOOSE_ID).slice(0, before.length)).toEqual(before);
    const rows = expectGooseReadable(db, GOOSE_ID, { isOurs: (r) => !before.some((b) => b.id === r.id) });
    expect(rows.slice(before.length).map((r) => r.content[0]!.type)).toEqual(["text", "toolRequest", "toolResponse", "text"]);
    // goose's settings stay as goose wrote them; extension_data gains only skein's own entry
    // (`skein.v0`: the seq epochs this session has used), every entry of goose's unchanged.
    const after = db.prepare("SELECT goose_mode, provider_name, model_config_json, extension_data FROM sessions WHERE id = ?").get(GOOSE_ID) as Record<string, string>;
    const { extension_data: dataAfter, ...settingsAfter } = after;
    const { extension_data: dataBefore, ...settingsBefore } = sessionBefore as Record<string, string>;
    expect(settingsAfter).toEqual(settingsBefore);
    const { ["skein.v0"]: own, ...gooseEntries } = JSON.parse(dataAfter!) as Record<string, unknown>;
    expect(gooseEntries).toEqual(JSON.parse(dataBefore!));
    expect(own).toEqual({ seq_epochs: 1 });
  });

  it("the kept history is reloaded when goose adds a message or compacts between replies: the next model request holds goose's version", async () => {
    const s = await createSession(h.client);
    const streamed = () => h.model.requests.filter((r) => (r as { stream?: unknown }).stream === true);
    const sentTexts = () => (streamed().at(-1)!.messages as { role: string; content: unknown }[]).filter((m) => m.role !== "system").map((m) => m.content);
    const gooseRow = (text: string, role: string, n: number) =>
      db
        .prepare("INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) VALUES (?, ?, ?, ?, ?, ?)")
        .run(`msg_${s.id}_goose${n}`, s.id, role, JSON.stringify([{ type: "text", text }]), Math.floor(Date.now() / 1000), '{"userVisible":true,"agentVisible":true}');
    for (let i = 0; i < 3; i++) h.model.enqueueCompletion(openaiCompletion("Desc"));
    h.model.enqueue({ events: openaiText("first answer") });
    expect(finishReason(await collect(reply(h.client, s.id, "one")))).toBe(STOP);
    // goose's add_message from its own connection.
    db.transaction(() => {
      db.prepare("UPDATE sessions SET updated_at = datetime('now') WHERE id = ?").run(s.id);
      gooseRow("added by goose", "user", 1);
    }).immediate();
    h.model.enqueue({ events: openaiText("second answer") });
    expect(finishReason(await collect(reply(h.client, s.id, "two")))).toBe(STOP);
    expect(sentTexts()).toEqual(["one", "first answer", "added by goose", "two"]);
    // goose's replace_conversation: every row deleted, its compacted conversation inserted.
    db.transaction(() => {
      db.prepare("DELETE FROM messages WHERE session_id = ?").run(s.id);
      gooseRow("summary by goose", "user", 2);
      gooseRow("noted", "assistant", 3);
    }).immediate();
    h.model.enqueue({ events: openaiText("third answer") });
    expect(finishReason(await collect(reply(h.client, s.id, "three")))).toBe(STOP);
    expect(sentTexts()).toEqual(["summary by goose", "noted", "three"]);
  });

  it("summarizes with goose's visibility flags, never a summarizationRequested row", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("one") }, { events: openaiText("two") });
    await collect(reply(h.client, s.id, "first turn"));
    await collect(reply(h.client, s.id, "second turn"));
    h.model.enqueueCompletion(openaiCompletion("Manual summary."));
    const res = await call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id }));
    expect(res.summary).toBe("Manual summary.");
    const rows = expectGooseReadable(db, s.id);
    const agent = rows.filter((r) => r.metadata?.agentVisible !== false).map((r) => (r.content[0] as { text?: string }).text);
    expect(agent).toEqual(["Manual summary.", expect.stringMatching(/^The previous message contains a summary/), "second turn", "two"]);
    h.model.enqueue({ events: openaiText("ok") });
    await collect(reply(h.client, s.id, "after"));
    const sent = (h.model.requests.at(-1)!.messages as { content: unknown }[]).slice(1).map((m) => m.content);
    expect(sent).toEqual(["Manual summary.", expect.stringMatching(/^The previous message/), "second turn", "two", "after"]);
  });

  it("deletes a session and its rows; a bad id never reaches SQL", async () => {
    const s = await createSession(h.client);
    await collect(reply(h.client, s.id, "bye"));
    await call(h.client, h.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
    expect(db.prepare("SELECT COUNT(*) AS n FROM messages WHERE session_id = ?").get(s.id)).toEqual({ n: 0 });
    expect((await rejection(getSession(h.client, s.id))).code).toBe(status.NOT_FOUND);
    const bad = await rejection(getSession(h.client, "x' OR '1'='1"));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("goose-sqlite store under faults", () => {
  let h: Harness | undefined;
  let holder: ChildProcess | undefined;
  afterEach(async () => {
    holder?.kill("SIGKILL");
    holder = undefined;
    await h?.close();
    h = undefined;
  });

  it("kill -9 mid-reply leaves a database that passes integrity_check and a session that reloads and continues", async () => {
    h = await startHarness({}, { store: "goose-sqlite" });
    const s = await createSession(h.client);
    const hold = gate();
    h.model.enqueue(
      { events: openaiToolCalls([{ id: "call_1", name: "developer__shell", args: { command: "pwd" } }]) },
      { events: openaiText("never completes", { pieces: 4 }), holdAfter: 3, hold: hold.promise },
    );
    const stream = reply(h.client, s.id, "work, then die");
    await readUntil(stream, (e) => e.event?.$case === "textDelta");
    hangUp(stream);
    await h.svc.stop("SIGKILL");
    hold.release();
    const db = openLikeGoose(join(h.sessionsDir, "sessions.db"));
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(expectGooseReadable(db, s.id).map((r) => r.role)).toEqual(["user", "assistant", "user"]);
    } finally {
      db.close();
    }
    await h.restart();
    h.model.enqueue({ events: openaiText("back again") });
    expect(finishReason(await collect(reply(h.client, s.id, "are you there?")))).toBe(STOP);
    expect((await getSession(h.client, s.id)).messages).toHaveLength(5);
  });

  it("answers a tool request a crash (or goose) left unanswered before the next model call", async () => {
    h = await startHarness({}, { store: "goose-sqlite" });
    const s = await createSession(h.client);
    const db = openLikeGoose(join(h.sessionsDir, "sessions.db"));
    try {
      insertGooseSession(db, {
        id: "20250102_1",
        messages: [
          { id: null, role: "user", created: 1753704324, content: [{ type: "text", text: "run it" }] },
          { id: null, role: "assistant", created: 1753704325, content: [{ type: "toolRequest", id: "call_x", toolCall: { status: "success", value: { name: "developer__shell", arguments: {} } } }] },
        ],
      });
      h.model.enqueue({ events: openaiText("ok") });
      expect(finishReason(await collect(reply(h.client, "20250102_1", "continue")))).toBe(STOP);
      const rows = expectGooseReadable(db, "20250102_1");
      expect(rows[2]).toMatchObject({ role: "user", content: [{ type: "toolResponse", id: "call_x", toolResult: { status: "error" } }] });
      expect((h.model.requests.at(-1)!.messages as { role: string }[]).map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "user"]);
      expect(s.id).not.toBe("20250102_1");
    } finally {
      db.close();
    }
  });

  it("keeps streaming while another process holds the write lock, and commits once it is released", async () => {
    h = await startHarness({}, { store: "goose-sqlite" });
    const a = await createSession(h.client);
    const b = await createSession(h.client);
    const hold = gate();
    h.model.enqueue({ events: openaiText("streamed while the database is locked", { pieces: 6 }), holdAfter: 2, hold: hold.promise });
    const stream = reply(h.client, a.id, "go");
    const head = await readUntil(stream, (e) => e.event?.$case === "textDelta");
    const script = `const D=require(${JSON.stringify(createRequire(import.meta.url).resolve("better-sqlite3"))});const d=new D(process.argv[1]);d.exec("BEGIN IMMEDIATE");process.stdout.write("locked\\n");process.stdin.once("data",()=>{d.exec("COMMIT");process.exit(0)});`;
    holder = spawn(process.execPath, ["-e", script, join(h.sessionsDir, "sessions.db")], { stdio: ["pipe", "pipe", "inherit"] });
    await once(holder.stdout!, "data");
    hold.release();
    // The rest of the text arrives while the lock is held; the assistant message waits for it.
    let text = head.flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : [])).join("");
    const deltas = await readUntil(stream, (e) => (text += e.event?.$case === "textDelta" ? e.event.value.text : "").endsWith("the database is locked"));
    expect(deltas.every((e) => e.event?.$case === "textDelta")).toBe(true);
    // Reads of other sessions go on too (WAL).
    expect((await getSession(h.client, b.id)).session!.id).toBe(b.id);
    expect(holder.exitCode).toBeNull();
    holder.stdin!.write("go\n");
    const rest = await collect(stream);
    expect(finishReason(rest)).toBe(STOP);
    expect((await getSession(h.client, a.id)).messages.map((m) => m.role)).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
  });

  it("refuses SKEIN_SESSION_STORE=postgres and unknown values at start with exit 2 naming the variable", async () => {
    for (const value of ["postgres", "mysql"]) {
      const svc = await startService("session", { SKEIN_SESSION_STORE: value }, { expectExit: true });
      expect((await svc.exited).code).toBe(2);
      expect(svc.output.join("\n")).toContain("SKEIN_SESSION_STORE");
    }
  });
});
