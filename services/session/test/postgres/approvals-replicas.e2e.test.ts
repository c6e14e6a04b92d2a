// Tool approvals across replicas: two real session service processes on one real PostgreSQL;
// a turn paused on A is decided on B (and after A died), and the tool runs exactly once.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { call, openaiText, openaiToolCalls, startPostgres, startReplicaCluster, type PostgresCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { approvalEntry } from "../extensions/helpers.js";
import { finishedReason, getOn, hasFinished, replyOn, say, TaggedModel, watchOn, type AnyEvent } from "../support/replicas.js";

let pgc: PostgresCluster;
let c: ReplicaCluster;
let model: TaggedModel;
let work: string;
let A: SessionReplica, B: SessionReplica;

beforeAll(async () => {
  pgc = await startPostgres();
  work = await mkdtemp(join(tmpdir(), "skein-approval-replicas-"));
  c = await startReplicaCluster({ postgres: pgc, replicas: 2, leaseMs: 10_000 });
  [A, B] = c.replicas as [SessionReplica, SessionReplica];
  model = new TaggedModel(c.model, () => ({ events: openaiText("fallback") }));
});
afterAll(async () => {
  await c?.close();
  await pgc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const asked = (events: AnyEvent[]) => events.some((e) => e.event?.$case === "approvalRequired");
const linesOf = (path: string) => (existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : []);

async function approveSession(name: string): Promise<{ id: string; log: string; tool: string }> {
  const log = join(work, `${name}.log`);
  const ext = pb.ExtensionConfig.fromPartial({ name, cmd: process.execPath, args: [approvalEntry], env: { APPROVAL_LOG: log } });
  const res = await call(A.client, A.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [ext], mode: pb.PermissionMode.PERMISSION_MODE_APPROVE }));
  return { id: res.session!.id, log, tool: `${name}__append` };
}

const confirmOn = (r: SessionReplica, sessionId: string, toolCallId: string) =>
  call(r.client, r.client.confirmToolCall, pb.ConfirmToolCallRequest.fromPartial({ sessionId, toolCallId, permission: pb.ToolPermission.TOOL_PERMISSION_ALLOW_ONCE }));

it("a turn paused on A is approved on B: B runs the tool once, and A's open Reply stream gets the rest", async () => {
  const s = await approveSession("ab");
  const tag = model.tag({ events: openaiToolCalls([{ id: "call_ab", name: s.tool, args: { line: "ab" } }]) }, { events: openaiText("ran on B") });
  const onA = replyOn(A.client, s.id, say(tag));
  await onA.until(asked);
  expect((await getOn(B.client, s.id)).session!.pendingApprovals.map((p) => p.toolCallId)).toEqual(["call_ab"]);
  await confirmOn(B, s.id, "call_ab");
  const events = await onA.until(hasFinished);
  expect(finishedReason(events)).toBe(pb.FinishReason.FINISH_REASON_STOP);
  expect(linesOf(s.log)).toEqual(["ab"]);
  expect(model.requests(tag)).toBe(2);
  expect((await getOn(A.client, s.id)).session!.pendingApprovals).toEqual([]);
  // Stored as goose keeps it: the goose_mode column, the ask and the decision as goose's messages.
  expect(await c.rows("SELECT goose_mode FROM sessions WHERE id = $1", [s.id])).toEqual([{ goose_mode: "approve" }]);
  const kinds = await c.rows<{ t: string }>(
    "SELECT c->'data'->>'actionType' AS t FROM messages m, jsonb_array_elements(m.content_json) c WHERE m.session_id = $1 AND c->>'type' = 'actionRequired' ORDER BY m.id",
    [s.id],
  );
  expect(kinds.map((k) => k.t)).toEqual(["toolConfirmation", "toolConfirmationResponse"]);
});

it("A dies while a turn waits; B approves and continues it from the stored history, the tool running once", async () => {
  const s = await approveSession("dead");
  const tag = model.tag({ events: openaiToolCalls([{ id: "call_dead", name: s.tool, args: { line: "dead" } }]) }, { events: openaiText("ran after A died") });
  const onA = replyOn(A.client, s.id, say(tag));
  const seen = await onA.until(asked);
  await A.kill();
  const watcher = watchOn(B.client, s.id, seen[seen.length - 1]!.seq);
  await confirmOn(B, s.id, "call_dead");
  const rest = await watcher.until(hasFinished);
  watcher.close();
  expect(finishedReason(rest)).toBe(pb.FinishReason.FINISH_REASON_STOP);
  expect(linesOf(s.log)).toEqual(["dead"]);
  expect(model.requests(tag)).toBe(2);
});
