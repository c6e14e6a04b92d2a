import { tmpdir } from "node:os";
import { session as pb } from "@skein/proto";
import { call, closeClients, collect, openaiText, openaiToolCalls, startOpenAIServer, startPostgres, startReplicaCluster, type FakeModelServer, type PostgresCluster, type ReplicaCluster } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { alive } from "./extensions/helpers.js";
import { fixtureExt } from "./support/extensions.js";
import { createSession, eventually, finishReason, reply, type Client } from "./support/harness.js";

/**
 * A session's extension edits on one replica reach the agent another replica
 * already has loaded: its next run starts the stored extensions again.
 */
let db: PostgresCluster;
let model: FakeModelServer;
let cluster: ReplicaCluster | undefined;

beforeAll(async () => {
  db = await startPostgres();
  model = await startOpenAIServer();
  cluster = await startReplicaCluster({ replicas: 2, postgres: db, model, env: { SKEIN_EXTENSION_KILL_GRACE_MS: "500" } });
});

afterAll(async () => {
  closeClients();
  await cluster?.close();
  await model?.close();
  await db?.stop();
});

const STOP = pb.FinishReason.FINISH_REASON_STOP;
const offered = (request: Record<string, unknown>) => ((request.tools ?? []) as { function: { name: string } }[]).map((t) => t.function.name);

/** A reply on `c`; returns the model requests it made. */
async function replyOn(c: Client, sessionId: string, text: string): Promise<Record<string, unknown>[]> {
  const before = model.requests.length;
  const events = await collect(reply(c, sessionId, text));
  expect(finishReason(events)).toBe(STOP);
  return model.requests.slice(before) as Record<string, unknown>[];
}

it("AddExtension on A reaches B's loaded agent at its next Reply; RemoveExtension on A ends B's process at B's next run", async () => {
  const [a, b] = cluster!.replicas.map((r) => r.client);
  const s = await createSession(a, tmpdir());
  model.enqueue({ events: openaiText("no tools yet") });
  const [first] = await replyOn(b, s.id, "hello");
  expect(offered(first!)).not.toContain("fx__pid");

  await call(a, a.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId: s.id, extension: fixtureExt("fx") }));
  model.enqueue({ events: openaiToolCalls([{ id: "call_pid", name: "fx__pid", args: {} }]) }, { events: openaiText("got it") });
  const [withTool, afterTool] = await replyOn(b, s.id, "your pid?");
  expect(offered(withTool!)).toContain("fx__pid");
  const result = (afterTool!.messages as Record<string, unknown>[]).find((m) => m.tool_call_id === "call_pid")!;
  const pidOnB = Number(result.content);
  expect(Number.isInteger(pidOnB) && alive(pidOnB)).toBe(true);

  await call(a, a.removeExtension, pb.RemoveExtensionRequest.fromPartial({ sessionId: s.id, name: "fx" }));
  expect(alive(pidOnB)).toBe(true);
  model.enqueue({ events: openaiText("tools gone") });
  const [withoutTool] = await replyOn(b, s.id, "and now?");
  expect(offered(withoutTool!)).not.toContain("fx__pid");
  await eventually(() => alive(pidOnB), (live) => !live);
});
