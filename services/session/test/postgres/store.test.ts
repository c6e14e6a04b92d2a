import pg from "pg";
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata, message, textItem, markDescriptionUserSet, sessionExtensions, withSessionExtensions, type GooseMessage } from "@skein/goose-sessions/goose-format";
import { toGooseContent } from "@skein/goose-sessions/goose-rows";
import { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import { LeaseLostError, RunLeases } from "../../src/cluster/postgres/run-lease.js";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copySession, CARRIED_COLUMNS } from "@skein/goose-sessions";
import { DB_NAME, SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { buildFreshGooseDb, insertGooseSession, openLikeGoose, weatherConversation } from "../support/goose-db.js";

const log = pino({ level: "silent" });
let cluster: PostgresCluster;
let url: string;
let store: PostgresSessionStore;
const extra: { end(): Promise<void> }[] = [];

beforeAll(async () => {
  cluster = await testPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});
beforeEach(async () => {
  url = await cluster.createDatabase();
  store = await PostgresSessionStore.open(url, log);
});
afterEach(async () => {
  // Extra connections first: one may hold a row lock a statement of the store's pool waits for.
  for (const e of extra.splice(0)) await e.end();
  await store?.close();
});

const today = () => new Date().toISOString().slice(0, 10).replaceAll("-", "");
const ext = { name: "notes", cmd: "node", args: ["server.js"], env: { A: "1" }, timeoutSeconds: 30 };
async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

describe("PostgresSessionStore", () => {
  it("allocates goose's ids YYYYMMDD_N, without collisions between replicas creating at once", async () => {
    const other = await PostgresSessionStore.open(url, log);
    extra.push({ end: () => other.close() });
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).create(defaultMetadata("/w", ""))));
    const ns = created.map((s) => s.id).sort((a, b) => Number(a.split("_")[1]) - Number(b.split("_")[1]));
    expect(ns).toEqual(Array.from({ length: 20 }, (_, i) => `${today()}_${i + 1}`));
  });

  it("stores goose's message model: the content array, both visibility flags, message ids, seconds; reads back the same", async () => {
    const s = await store.create(defaultMetadata("/work", "Berlin weather"));
    const conversation = weatherConversation().map((m) => ({ ...m, id: null }) as unknown as GooseMessage);
    for (const m of conversation) await store.append(s.id, m);
    const loaded = await store.load(s.id);
    // Tool results in the form current goose reads (CallToolResult objects), as in sessions.db.
    expect(loaded!.messages.map((m) => m.content)).toEqual(conversation.map((m) => toGooseContent(m.content, "object").content));
    expect(loaded!.messages.every((m) => typeof m.id === "string" && m.id.startsWith(`msg_${s.id}_`))).toBe(true);
    expect(conversation.map((m) => m.id)).toEqual(loaded!.messages.map((m) => m.id));
    const rows = await sql<{ content_json: unknown; metadata_json: unknown; created_timestamp: string; role: string }>(
      "SELECT content_json, metadata_json, created_timestamp, role FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id",
      [s.id],
    );
    expect(rows.map((r) => r.metadata_json)).toEqual(rows.map(() => ({ userVisible: true, agentVisible: true })));
    expect(Array.isArray(rows[0]!.content_json)).toBe(true);
    expect(Number(rows[0]!.created_timestamp)).toBeLessThan(10_000_000_000);
    expect((await store.info(s.id))!.metadata.message_count).toBe(conversation.length);
  });

  it("never stores a content type goose cannot load", async () => {
    const s = await store.create(defaultMetadata("/w", ""));
    await store.append(s.id, message("assistant", [textItem("kept"), { type: "madeUp", x: 1 }]));
    await store.append(s.id, message("assistant", [{ type: "madeUp" }]));
    const loaded = await store.load(s.id);
    expect(loaded!.messages.map((m) => m.content)).toEqual([[{ type: "text", text: "kept" }]]);
  });

  it("keeps extensions in extension_data in goose's shape and the caller's description as a user-set name", async () => {
    const s = await store.create(markDescriptionUserSet(withSessionExtensions(defaultMetadata("/w", "mine"), [ext])));
    const [row] = await sql<{ name: string; user_set_name: boolean; extension_data: Record<string, { extensions: unknown[] }>; session_type: string }>(
      "SELECT name, user_set_name, extension_data, session_type FROM sessions WHERE id = $1",
      [s.id],
    );
    expect(row).toMatchObject({ name: "mine", user_set_name: true, session_type: "user" });
    expect(row!.extension_data["enabled_extensions.v0"]!.extensions).toEqual([
      expect.objectContaining({ type: "stdio", name: "notes", cmd: "node", args: ["server.js"], envs: { A: "1" }, timeout: 30 }),
    ]);
    const info = await store.info(s.id);
    expect(sessionExtensions(info!.metadata)).toEqual([ext]);
  });

  it("updates metadata atomically: concurrent token updates from two replicas never undo each other", async () => {
    const other = await PostgresSessionStore.open(url, log);
    extra.push({ end: () => other.close() });
    const s = await store.create(defaultMetadata("/w", ""));
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? store : other).updateMetadata(s.id, (m) => ({ ...m, accumulated_total_tokens: (m.accumulated_total_tokens ?? 0) + 1 })),
      ),
    );
    expect((await store.info(s.id))!.metadata.accumulated_total_tokens).toBe(10);
    expect(await store.updateMetadata("nope", (m) => m)).toBeUndefined();
  });

  it("lists newest first in pages, counts, rewrites (compaction) and deletes", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const s = await store.create(defaultMetadata("/w", `s${i}`));
      await store.append(s.id, message("user", [textItem(`hi ${i}`)]));
      ids.push(s.id);
    }
    const seen: string[] = [];
    let token = "";
    do {
      const page = await store.list(2, token);
      seen.push(...page.sessions.map((s) => s.id));
      token = page.nextPageToken;
    } while (token !== "");
    expect(seen).toEqual([...ids].reverse());
    expect(await store.count()).toBe(5);
    await expect(store.list(2, "garbage")).rejects.toThrow(/page_token/);

    const first = ids[0]!;
    const summary = message("user", [textItem("summary")]);
    summary.metadata = { userVisible: false, agentVisible: true };
    const info = await store.rewrite(first, (m) => ({ ...m, description: "compacted" }), [summary, message("assistant", [textItem("ok")])]);
    expect(info.metadata.description).toBe("compacted");
    const loaded = await store.load(first);
    expect(loaded!.messages.map((m) => [m.content, m.metadata])).toEqual([
      [[{ type: "text", text: "summary" }], { userVisible: false, agentVisible: true }],
      [[{ type: "text", text: "ok" }], { userVisible: true, agentVisible: true }],
    ]);
    expect(await store.delete(first)).toBe(true);
    expect(await store.delete(first)).toBe(false);
    expect(await store.load(first)).toBeUndefined();
    await expect(store.append(first, message("user", [textItem("x")]))).rejects.toThrow(/does not exist/);
  });

  it("refuses every write of a run whose lease was taken over, and writes nothing", async () => {
    const leases = new RunLeases(store.pool, 50);
    const s = await store.create(defaultMetadata("/w", ""));
    const { lease } = await leases.acquire(s.id, "req-a", "replica-a");
    const mine = store.withLease(lease);
    await mine.append(s.id, message("user", [textItem("while held")]));
    await new Promise((r) => setTimeout(r, 120));
    const taken = await leases.acquire(s.id, "req-b", "replica-b");
    expect(taken.tookOver).toEqual({ requestId: "req-a", owner: "replica-a" });
    await expect(mine.append(s.id, message("assistant", [textItem("late")]))).rejects.toBeInstanceOf(LeaseLostError);
    await expect(mine.updateMetadata(s.id, (m) => ({ ...m, total_tokens: 5 }))).rejects.toBeInstanceOf(LeaseLostError);
    await expect(mine.rewrite(s.id, (m) => m, [])).rejects.toBeInstanceOf(LeaseLostError);
    const loaded = await store.load(s.id);
    expect(loaded!.messages.map((m) => m.content)).toEqual([[{ type: "text", text: "while held" }]]);
    expect(loaded!.metadata.total_tokens).toBeNull();
    await store.withLease(taken.lease).append(s.id, message("user", [textItem("new owner")]));
    await expect(store.withLease(taken.lease).append("other", message("user", [textItem("x")]))).rejects.toThrow(/cannot write session other/);
  });
});

/** Another writer's transaction holding the session row (uncommitted) until commit(). */
async function holdSessionRow(id: string, name: string): Promise<{ commit(): Promise<void> }> {
  const blocker = new pg.Client({ connectionString: url, application_name: "test-blocker" });
  await blocker.connect();
  extra.push(blocker);
  await blocker.query("BEGIN");
  await blocker.query("UPDATE sessions SET name = $2, updated_at = now() WHERE id = $1", [id, name]);
  return { commit: async () => void (await blocker.query("COMMIT")) };
}

/** Resolves once `n` backends of this database wait for a lock (the store's statement queued behind the blocker), or `until` settled first (false). */
async function lockWaiters(n: number, until?: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void until?.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    const r = await store.pool.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    if (r.rows[0]!.n >= n) return true;
    if (settled) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// A run's writes under its lease without BEGIN/COMMIT (goose-sessions postgres/leased-writes.ts): a message
// append is one statement, a metadata update two (read, then a write conditional on the row's
// version), keeping the guarantees of the transactions they replace.
describe("writes under a lease, without a transaction", () => {
  it("a leased append waiting for the session row while its lease is taken over lands before the takeover or writes nothing", async () => {
    const leases = new RunLeases(store.pool, 50);
    const s = await store.create(defaultMetadata("/w", ""));
    const { lease } = await leases.acquire(s.id, "req-a", "replica-a");
    const mine = store.withLease(lease);
    const other = await holdSessionRow(s.id, "another writer");
    const append = mine.append(s.id, message("assistant", [textItem("late")]));
    append.catch(() => undefined);
    await lockWaiters(1);
    await new Promise((r) => setTimeout(r, 120));
    const takeover = leases.acquire(s.id, "req-b", "replica-b");
    // The takeover either commits at once or waits behind the append (which then lands first).
    const takeoverWaited = await lockWaiters(2, takeover);
    await other.commit();
    const [appended, taken] = await Promise.allSettled([append, takeover]);
    expect(taken).toMatchObject({ status: "fulfilled", value: { tookOver: { requestId: "req-a" } } });
    const loaded = (await store.load(s.id))!;
    if (!takeoverWaited || appended.status === "rejected") {
      expect(appended.status === "rejected" && appended.reason).toBeInstanceOf(LeaseLostError);
      expect(loaded.messages).toEqual([]);
    } else {
      expect(loaded.messages.map((m) => m.content)).toEqual([[{ type: "text", text: "late" }]]);
    }
    // The append's updated_at bump was applied to the other writer's version, not over it.
    expect(loaded.metadata.description).toBe("another writer");
  });

  it("a leased metadata update that loses a race to another writer reads again and keeps both changes", async () => {
    const s = await store.create(defaultMetadata("/w", ""));
    const { lease } = await new RunLeases(store.pool, 60_000).acquire(s.id, "req-a", "replica-a");
    const run = store.withLease(lease);
    const before = await store.fingerprint(s.id);
    expect(store.ownFingerprint(s.id)).toBe(before);
    const other = await holdSessionRow(s.id, "renamed meanwhile");
    let calls = 0;
    const update = run.updateMetadata(s.id, (m) => {
      calls++;
      return { ...m, total_tokens: (m.total_tokens ?? 0) + 5 };
    });
    await lockWaiters(1, update);
    await other.commit();
    const written = await update;
    expect(calls).toBe(2);
    expect(written).toMatchObject({ description: "renamed meanwhile", total_tokens: 5 });
    expect((await store.info(s.id))!.metadata).toMatchObject({ description: "renamed meanwhile", total_tokens: 5 });
    // Another writer came in between: nothing vouches for the old fingerprint any more.
    expect(store.ownFingerprint(s.id)).toBeUndefined();
    expect(await store.fingerprint(s.id)).not.toBe(before);
  });

  it("concurrent leased and unleased metadata updates never undo each other", async () => {
    const other = await PostgresSessionStore.open(url, log);
    try {
      const s = await store.create(defaultMetadata("/w", ""));
      const { lease } = await new RunLeases(store.pool, 60_000).acquire(s.id, "req-a", "replica-a");
      const run = store.withLease(lease);
      const bump = (m: { accumulated_total_tokens?: number | null }) => ({ accumulated_total_tokens: (m.accumulated_total_tokens ?? 0) + 1 });
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? run : other).updateMetadata(s.id, (m) => ({ ...m, ...bump(m) }))),
      );
      expect((await store.info(s.id))!.metadata.accumulated_total_tokens).toBe(20);
    } finally {
      await other.close();
    }
  });

  it("a leased metadata update that changes nothing writes nothing, and still refuses a lost lease", async () => {
    const leases = new RunLeases(store.pool, 50);
    const s = await store.create(defaultMetadata("/w", ""));
    const { lease } = await leases.acquire(s.id, "req-a", "replica-a");
    const run = store.withLease(lease);
    const f0 = await store.fingerprint(s.id);
    const raw = async () => (await store.pool.query<{ x: string }>("SELECT xmin::text AS x FROM sessions WHERE id = $1", [s.id])).rows[0]!.x;
    const x0 = await raw();
    expect(await run.updateMetadata(s.id, (m) => m)).toBeDefined();
    expect(await raw()).toBe(x0);
    expect(await store.fingerprint(s.id)).toBe(f0);
    await new Promise((r) => setTimeout(r, 120));
    await leases.acquire(s.id, "req-b", "replica-b");
    await expect(run.updateMetadata(s.id, (m) => m)).rejects.toBeInstanceOf(LeaseLostError);
  });
});

describe("moving a goose session through PostgreSQL", () => {
  it("keeps every goose column: sessions.db → PostgreSQL → another sessions.db, byte for byte where goose reads", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skein-pg-goose-"));
    try {
      await mkdir(join(dir, "a"));
      const source = buildFreshGooseDb(join(dir, "a", DB_NAME));
      const builtin = { type: "builtin", name: "developer", description: "", display_name: "Developer", timeout: 300, bundled: true, available_tools: [] };
      insertGooseSession(source, {
        id: "20260101_7",
        name: "goose wrote this",
        extensionData: { "enabled_extensions.v0": { extensions: [builtin] }, "todo.v0": { items: ["x"] } },
        messages: weatherConversation(),
        columns: {
          provider_name: "anthropic",
          model_config_json: JSON.stringify({ model_name: "claude", context_limit: 200000 }),
          goose_mode: "chat",
          recipe_json: JSON.stringify({ title: "r", instructions: "do" }),
          accumulated_cost: 0.25,
          cache_read_tokens: 11,
          accumulated_cache_write_tokens: 22,
          created_at: "2026-01-01 10:00:00",
          updated_at: "2026-01-02 11:30:00",
        },
      });
      const before = source.prepare("SELECT * FROM sessions WHERE id = ?").get("20260101_7") as Record<string, unknown>;
      const beforeMessages = source.prepare("SELECT role, content_json, created_timestamp, message_id FROM messages ORDER BY id").all();
      source.close();
      const a = await SqliteSessionStore.open(join(dir, "a"), log, { syncEachMessage: false });
      await copySession(a, "20260101_7", store);
      await a.close();
      const [pgRow] = await sql<{ goose_mode: string; created_at: Date; extension_data: unknown }>("SELECT goose_mode, created_at, extension_data FROM sessions WHERE id = '20260101_7'");
      expect(pgRow!.goose_mode).toBe("chat");
      expect(pgRow!.created_at.toISOString()).toBe("2026-01-01T10:00:00.000Z");
      expect(pgRow!.extension_data).toEqual(JSON.parse(String(before.extension_data)));

      const b = await SqliteSessionStore.open(join(dir, "b"), log, { syncEachMessage: false });
      await copySession(store, "20260101_7", b);
      await b.close();
      const target = openLikeGoose(join(dir, "b", DB_NAME));
      try {
        const after = target.prepare("SELECT * FROM sessions WHERE id = ?").get("20260101_7") as Record<string, unknown>;
        for (const c of [...CARRIED_COLUMNS, "name", "working_dir", "created_at", "updated_at"]) {
          const v = (x: unknown) => (typeof x === "string" && /^[[{]/.test(x) ? JSON.parse(x) : x);
          expect(v(after[c]), c).toEqual(v(before[c]));
        }
        const afterMessages = target.prepare("SELECT role, content_json, created_timestamp, message_id FROM messages ORDER BY id").all() as Record<string, unknown>[];
        expect(afterMessages.map((m) => [m.role, m.created_timestamp, m.message_id])).toEqual((beforeMessages as Record<string, unknown>[]).map((m) => [m.role, m.created_timestamp, m.message_id]));
      } finally {
        target.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
