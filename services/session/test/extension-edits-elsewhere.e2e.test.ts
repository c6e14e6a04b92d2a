import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { session as pb } from "@skein/proto";
import { call, closeClients, collect, openaiText, openaiToolCalls, startOpenAIServer, startReplicaCluster, type FakeModelServer, type PostgresCluster, type ReplicaCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, fixtureEntry } from "./extensions/helpers.js";
import { buildFreshGooseDb } from "./support/goose-db.js";
import { fixtureExt } from "./support/extensions.js";
import { createSession, eventually, finishReason, reply, startHarness, type Client, type Harness } from "./support/harness.js";

/**
 * A session's extensions edited by another writer (another replica, the
 * goose CLI on the same sessions.db) reach the agent this process already has
 * loaded: its next run starts the stored extensions again.
 */

const STOP = pb.FinishReason.FINISH_REASON_STOP;

/** The other writer: adds the fixture server as extension `fx` to the session, or removes it again. */
interface Editor {
  add(sessionId: string): Promise<void>;
  remove(sessionId: string): Promise<void>;
}

/** On `c`: a reply loads the agent, `editor` adds `fx`, the next reply offers and calls it; `editor` removes it, the next run neither offers it nor keeps its process. */
async function followsEdits(c: Client, model: FakeModelServer, editor: Editor): Promise<void> {
  const replyOn = async (sessionId: string, text: string): Promise<Record<string, unknown>[]> => {
    const before = model.requests.length;
    expect(finishReason(await collect(reply(c, sessionId, text)))).toBe(STOP);
    return model.requests.slice(before) as Record<string, unknown>[];
  };
  const offered = (request: Record<string, unknown> | undefined) => ((request?.tools ?? []) as { function: { name: string } }[]).map((t) => t.function.name);

  const s = await createSession(c, tmpdir());
  model.enqueue({ events: openaiText("no tools yet") });
  expect(offered((await replyOn(s.id, "hello"))[0])).not.toContain("fx__pid");

  await editor.add(s.id);
  model.enqueue({ events: openaiToolCalls([{ id: "call_pid", name: "fx__pid", args: {} }]) }, { events: openaiText("got it") });
  const [withTool, afterTool] = await replyOn(s.id, "your pid?");
  expect(offered(withTool)).toContain("fx__pid");
  const pid = Number((afterTool!.messages as Record<string, unknown>[]).find((m) => m.tool_call_id === "call_pid")!.content);
  expect(Number.isInteger(pid) && alive(pid)).toBe(true);

  await editor.remove(s.id);
  expect(alive(pid)).toBe(true);
  model.enqueue({ events: openaiText("tools gone") });
  expect(offered((await replyOn(s.id, "and now?"))[0])).not.toContain("fx__pid");
  await eventually(() => alive(pid), (live) => !live);
}

describe("two replicas on one database", () => {
  let db: PostgresCluster;
  let model: FakeModelServer;
  let cluster: ReplicaCluster | undefined;
  beforeAll(async () => {
    db = await testPostgres();
    model = await startOpenAIServer();
    // No takeover is wanted: a lease no stall of a loaded machine outlasts.
    cluster = await startReplicaCluster({ replicas: 2, postgres: db, model, leaseMs: 10_000, env: { SKEIN_EXTENSION_KILL_GRACE_MS: "500" } });
  });
  afterAll(async () => {
    closeClients();
    await cluster?.close();
    await model?.close();
    await db?.stop();
  });

  it("AddExtension on A reaches B's loaded agent at its next Reply; RemoveExtension on A ends B's process at B's next run", async () => {
    const [a, b] = cluster!.replicas.map((r) => r.client);
    await followsEdits(b, model, {
      add: async (sessionId) => void (await call(a, a.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId, extension: fixtureExt("fx") }))),
      remove: async (sessionId) => void (await call(a, a.removeExtension, pb.RemoveExtensionRequest.fromPartial({ sessionId, name: "fx" }))),
    });
  });
});

describe("one host, the goose CLI editing sessions.db", () => {
  let root: string;
  let gooseDb: Database.Database | undefined;
  let h: Harness | undefined;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "skein-edits-"));
    const sessionsDir = join(root, "sessions");
    await mkdir(sessionsDir);
    gooseDb = buildFreshGooseDb(join(sessionsDir, "sessions.db"));
    h = await startHarness({ SKEIN_EXTENSION_KILL_GRACE_MS: "500" }, { store: "goose-sqlite", sessionsDir });
  });
  afterAll(async () => {
    await h?.close();
    gooseDb?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("extension_data edited by a second connection between replies: the next reply runs what it now lists", async () => {
    const fx = { type: "stdio", name: "fx", description: "", cmd: process.execPath, args: [fixtureEntry], envs: {}, env_keys: [], timeout: 300, bundled: null, available_tools: [] };
    const setExtensions = (sessionId: string, extensions: object[]) =>
      void gooseDb!.prepare("UPDATE sessions SET extension_data = ? WHERE id = ?").run(JSON.stringify({ "enabled_extensions.v0": { extensions } }), sessionId);
    await followsEdits(h!.client, h!.model, {
      add: async (sessionId) => setExtensions(sessionId, [fx]),
      remove: async (sessionId) => setExtensions(sessionId, []),
    });
  });
});
