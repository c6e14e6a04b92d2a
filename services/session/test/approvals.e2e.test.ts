// Tool approvals end to end: the built service, a real stdio MCP server (approval-server.mjs,
// which appends to a file so a test counts real runs), the fake OpenAI server, real stores.
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { status, type ClientReadableStream } from "@grpc/grpc-js";
import { parse as parseYaml } from "yaml";
import { session as pb } from "@skein/proto";
import { call, collect, connect, metricSample, openaiText, openaiToolCalls, rejection, scrapeMetrics } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvalEntry } from "./extensions/helpers.js";
import { buildFreshGooseDb, expectGooseReadable, insertGooseSession, openLikeGoose } from "./support/goose-db.js";
import { STORES, storedMessages } from "./support/stored.js";
import { eventually, finishReason, getSession, hangUp, readUntil, reply, startHarness, watch, type Client, type Event, type Harness } from "./support/harness.js";

const M = pb.PermissionMode;
const P = pb.ToolPermission;

function approvalExt(log: string, name = "fx"): pb.ExtensionConfig {
  return pb.ExtensionConfig.fromPartial({ name, cmd: process.execPath, args: [approvalEntry], env: { APPROVAL_LOG: log } });
}

const approvals = (events: Event[]) => events.flatMap((e) => (e.event?.$case === "approvalRequired" ? [e.event.value] : []));
const confirm = (c: Client, sessionId: string, toolCallId: string, permission: pb.ToolPermission) =>
  call(c, c.confirmToolCall, pb.ConfirmToolCallRequest.fromPartial({ sessionId, toolCallId, permission }));
/** The stream's events up to its `finished`; then the call is let go (its status never reaches an unlistened stream). */
const rest = async (stream: ClientReadableStream<Event>) => {
  const events = await readUntil(stream, (e) => e.event?.$case === "finished");
  hangUp(stream);
  return events;
};
const lines = async (path: string) => (existsSync(path) ? (await readFile(path, "utf8")).split("\n").filter(Boolean) : []);
const toolMessages = (req: Record<string, unknown>) => (req.messages as Record<string, unknown>[]).filter((m) => m.role === "tool");

describe.each(STORES)("tool approvals on %s", (store) => {
  let h: Harness;
  let work: string;
  let n = 0;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_METRICS_ADDR: "127.0.0.1:0" }, { store });
    work = await mkdtemp(join(tmpdir(), "skein-approvals-"));
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** A session with its own extension name, so an always-allow of one test does not reach another. */
  async function session(mode: pb.PermissionMode): Promise<{ id: string; log: string; fx: string }> {
    const log = join(work, `log-${++n}`);
    const fx = `fx${n}`;
    const res = await call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [approvalExt(log, fx)], mode }));
    expect(res.session!.mode).toBe(mode);
    return { id: res.session!.id, log, fx };
  }

  it("chat mode offers the model no tools; the mode is kept and UpdateSession changes it", async () => {
    const s = await session(M.PERMISSION_MODE_CHAT);
    h.model.enqueue({ events: openaiText("just talking") });
    const before = h.model.requests.length;
    expect(finishReason(await collect(reply(h.client, s.id, "hi")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(h.model.requests[before]!.tools ?? []).toEqual([]);
    expect((await getSession(h.client, s.id, false)).session!.mode).toBe(M.PERMISSION_MODE_CHAT);
    const updated = await call(h.client, h.client.updateSession, pb.UpdateSessionRequest.fromPartial({ sessionId: s.id, mode: M.PERMISSION_MODE_APPROVE, description: "renamed" }));
    expect(updated.session).toMatchObject({ mode: M.PERMISSION_MODE_APPROVE, description: "renamed" });
    expect((await getSession(h.client, s.id, false)).session!.mode).toBe(M.PERMISSION_MODE_APPROVE);
    // The next reply of the same live agent runs in the new mode.
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_m", name: `${s.fx}__append`, args: { line: "m" } }]) });
    const stream = reply(h.client, s.id, "now with tools");
    await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    await call(h.client, h.client.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: s.id }));
    expect(finishReason(await rest(stream))).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
    expect(await lines(s.log)).toEqual([]);
    const missing = await rejection(call(h.client, h.client.updateSession, pb.UpdateSessionRequest.fromPartial({ sessionId: "20990101_1", mode: M.PERMISSION_MODE_AUTO })));
    expect(missing.code).toBe(status.NOT_FOUND);
  });

  it("approve: two calls of one message each ask; the reply waits past a hang-up; allow runs, deny refuses, from another connection", async () => {
    const s = await session(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue(
      {
        events: openaiToolCalls([
          { id: "call_a", name: `${s.fx}__append`, args: { line: "one" } },
          { id: "call_b", name: `${s.fx}__append`, args: { line: "two" } },
          // Made up by the model: answered "does not exist", never asked.
          { id: "call_x", name: `${s.fx}__nope`, args: {} },
        ]),
      },
      { events: openaiText("done") },
    );
    const stream = reply(h.client, s.id, "append twice");
    const first = await readUntil(stream, (e) => e.event?.$case === "approvalRequired" && e.event.value.toolCallId === "call_b");
    expect(approvals(first)).toEqual([
      { toolCallId: "call_a", toolName: `${s.fx}__append`, arguments: { line: "one" }, prompt: "" },
      { toolCallId: "call_b", toolName: `${s.fx}__append`, arguments: { line: "two" }, prompt: "" },
    ]);
    hangUp(stream);
    const lastSeq = first[first.length - 1]!.seq;

    const got = (await getSession(h.client, s.id, false)).session!;
    expect(got.pendingApprovals.map((p) => p.toolCallId)).toEqual(["call_a", "call_b"]);
    const busy = await rejection(collect(reply(h.client, s.id, "again")));
    expect(busy.code).toBe(status.FAILED_PRECONDITION);
    expect(busy.details).toMatch(/call_a.*call_b/);

    const other = connect(pb.SessionServiceClient, h.svc.address);
    const unknown = await rejection(confirm(other, s.id, "call_zzz", P.TOOL_PERMISSION_ALLOW_ONCE));
    expect(unknown.code).toBe(status.NOT_FOUND);
    const unspecified = await rejection(confirm(other, s.id, "call_a", P.TOOL_PERMISSION_UNSPECIFIED));
    expect(unspecified.code).toBe(status.INVALID_ARGUMENT);
    expect(unspecified.details).toMatch(/^permission:/);

    const pendingGauge = async () => metricSample((await scrapeMetrics(h.svc)).text, "skein_pending_approvals");
    expect(await pendingGauge()).toBe(2);
    const watcher = watch(other, s.id, lastSeq);
    await confirm(other, s.id, "call_a", P.TOOL_PERMISSION_ALLOW_ONCE);
    expect((await getSession(h.client, s.id, false)).session!.pendingApprovals.map((p) => p.toolCallId)).toEqual(["call_b"]);
    // The same decision again is fine; another one is not.
    await confirm(other, s.id, "call_a", P.TOOL_PERMISSION_ALLOW_ONCE);
    expect((await rejection(confirm(other, s.id, "call_a", P.TOOL_PERMISSION_DENY_ONCE))).code).toBe(status.FAILED_PRECONDITION);
    expect(await lines(s.log)).toEqual([]);
    const before = h.model.requests.length;
    await confirm(other, s.id, "call_b", P.TOOL_PERMISSION_DENY_ONCE);
    const rest = await readUntil(watcher, (e) => e.event?.$case === "finished");
    hangUp(watcher);
    expect(finishReason(rest)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(await lines(s.log)).toEqual(["one"]);
    const tools = toolMessages(h.model.requests[before]!);
    expect(tools.find((m) => m.tool_call_id === "call_a")!.content).toBe("appended one");
    expect(String(tools.find((m) => m.tool_call_id === "call_b")!.content)).toMatch(/The user has declined to run this tool/);
    expect(String(tools.find((m) => m.tool_call_id === "call_x")!.content)).toMatch(/does not exist/);
    expect((await getSession(h.client, s.id, false)).session!.pendingApprovals).toEqual([]);
    expect(await pendingGauge()).toBe(0);
    // A log line per request and per decision (who decided: request id and peer), never the arguments.
    const logs = h.svc.logs as Record<string, unknown>[];
    expect(logs.filter((l) => l.msg === "tool call waits for approval" && l.sessionId === s.id).map((l) => l.toolCallId)).toEqual(["call_a", "call_b"]);
    expect(logs.find((l) => l.msg === "tool call decided" && l.toolCallId === "call_b")).toMatchObject({ toolName: `${s.fx}__append`, permission: "deny_once", decidedBy: expect.any(String), peer: expect.stringMatching(/127\.0\.0\.1/) });
    expect(JSON.stringify(logs)).not.toContain('"line":"two"');

    const stored = await storedMessages(h, store, s.id);
    const types = stored.flatMap((m) => (m.content as { type: string; data?: { actionType?: string } }[]).map((c) => c.data?.actionType ?? c.type));
    const asks = store === "goose-jsonl" ? ["toolConfirmationRequest", "toolConfirmationRequest"] : ["toolConfirmation", "toolConfirmation", "toolConfirmationResponse", "toolConfirmationResponse"];
    expect(types).toEqual(["text", "toolRequest", "toolRequest", "toolRequest", ...asks, "toolResponse", "toolResponse", "toolResponse", "text"]);
    expect((await rejection(confirm(h.client, s.id, "call_b", P.TOOL_PERMISSION_ALLOW_ONCE))).code).toBe(status.FAILED_PRECONDITION);
  });

  it("smart_approve runs read-only tools; always allow is written to goose's permission.yaml and asks no more", async () => {
    const s = await session(M.PERMISSION_MODE_SMART_APPROVE);
    h.model.enqueue(
      { events: openaiToolCalls([{ id: "call_p", name: `${s.fx}__peek`, args: {} }, { id: "call_w", name: `${s.fx}__append`, args: { line: "w" } }]) },
      { events: openaiText("ok") },
      { events: openaiToolCalls([{ id: "call_w2", name: `${s.fx}__append`, args: { line: "w2" } }]) },
      { events: openaiText("ok again") },
    );
    const stream = reply(h.client, s.id, "peek and write");
    const first = await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    expect(approvals(first).map((a) => a.toolCallId)).toEqual(["call_w"]);
    await confirm(h.client, s.id, "call_w", P.TOOL_PERMISSION_ALWAYS_ALLOW);
    const after = await rest(stream);
    expect(finishReason(after)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const perms = parseYaml(await readFile(join(h.dir, "config", "goose", "permission.yaml"), "utf8")) as Record<string, Record<string, string[]>>;
    expect(perms.user).toEqual({ always_allow: [`${s.fx}__append`], ask_before: [], never_allow: [] });

    const again = await collect(reply(h.client, s.id, "write again"));
    expect(approvals(again)).toEqual([]);
    expect(finishReason(again)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(await lines(s.log)).toEqual(["w", "w2"]);
  });

  it("CancelReply denies what waits and ends the reply cancelled; the history stays answered", async () => {
    const s = await session(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_c", name: `${s.fx}__append`, args: { line: "c" } }]) });
    const stream = reply(h.client, s.id, "append", "req-cancel");
    await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    const res = await call(h.client, h.client.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: s.id }));
    expect(res.cancelled).toBe(true);
    const after = await rest(stream);
    expect(finishReason(after)).toBe(pb.FinishReason.FINISH_REASON_CANCELLED);
    expect(after.every((e) => e.requestId === "req-cancel")).toBe(true);
    expect(await lines(s.log)).toEqual([]);
    expect((await getSession(h.client, s.id, false)).session!.pendingApprovals).toEqual([]);
    await storedMessages(h, store, s.id);
  });

  it("outlives the process: kill -9 while waiting, restart, approve; the tool runs once and the model gets its result", async () => {
    const s = await session(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_k", name: `${s.fx}__append`, args: { line: "k" } }]) });
    const stream = reply(h.client, s.id, "append once");
    await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    hangUp(stream);
    await h.restart();
    const got = (await getSession(h.client, s.id, false)).session!;
    expect(got.pendingApprovals.map((p) => p.toolCallId)).toEqual(["call_k"]);
    h.model.enqueue({ events: openaiText("it ran") });
    const before = h.model.requests.length;
    const watcher = watch(h.client, s.id, got.lastSeq);
    await confirm(h.client, s.id, "call_k", P.TOOL_PERMISSION_ALLOW_ONCE);
    const rest = await readUntil(watcher, (e) => e.event?.$case === "finished");
    hangUp(watcher);
    expect(finishReason(rest)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(await lines(s.log)).toEqual(["k"]);
    expect(toolMessages(h.model.requests[before]!)).toEqual([{ role: "tool", tool_call_id: "call_k", content: "appended k" }]);
  });

  it("a reply paused before a restart gets its SKEIN_APPROVAL_TIMEOUT_MS back: the restarted process denies it and the turn goes on", async () => {
    const s = await session(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_r", name: `${s.fx}__append`, args: { line: "r" } }]) }, { events: openaiText("refused after restart") });
    const stream = reply(h.client, s.id, "append later");
    await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    hangUp(stream);
    const before = h.model.requests.length;
    await h.restart({ SKEIN_APPROVAL_TIMEOUT_MS: "300" });
    await eventually(async () => (await getSession(h.client, s.id, false)).session!.pendingApprovals.length === 0 && h.model.requests.length > before);
    expect(String(toolMessages(h.model.requests[before]!)[0]!.content)).toMatch(/SKEIN_APPROVAL_TIMEOUT_MS/);
    expect(await lines(s.log)).toEqual([]);
    // user, tool request, ask, (decision: not in goose ≤ 1.9 files), tool result, answer
    // Read once the turn has ended (the file's message count is written at its end).
    await eventually(async () => (await storedMessages(h, store, s.id).catch(() => [])).length === (store === "goose-jsonl" ? 5 : 6));
  });
});

describe("approval timeout and defaults", () => {
  let h: Harness;
  let work: string;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_APPROVAL_TIMEOUT_MS: "300", GOOSE_MODE: "approve" }, { store: "goose-sqlite" });
    work = await mkdtemp(join(tmpdir(), "skein-approvals-"));
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("GOOSE_MODE is the default; an undecided call is denied after SKEIN_APPROVAL_TIMEOUT_MS and the turn goes on", async () => {
    const log = join(work, "log");
    const res = await call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [approvalExt(log)] }));
    expect(res.session!.mode).toBe(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_t", name: "fx__append", args: { line: "t" } }]) }, { events: openaiText("it was refused") });
    const before = h.model.requests.length;
    const events = await collect(reply(h.client, res.session!.id, "append"));
    expect(approvals(events).map((a) => a.toolCallId)).toEqual(["call_t"]);
    expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(String(toolMessages(h.model.requests[before + 1]!)[0]!.content)).toMatch(/SKEIN_APPROVAL_TIMEOUT_MS/);
    expect(await lines(log)).toEqual([]);
    await eventually(async () => (await getSession(h.client, res.session!.id, false)).session!.pendingApprovals.length === 0);
  });
});

describe("a session goose made, in goose's approve mode", () => {
  let h: Harness;
  let root: string;
  const GOOSE_ID = "20250101_9";
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "skein-goose-approve-"));
    const sessionsDir = join(root, "sessions");
    await mkdir(sessionsDir);
    const db = buildFreshGooseDb(join(sessionsDir, "sessions.db"));
    const stdio = { type: "stdio", name: "fx", description: "", cmd: process.execPath, args: [approvalEntry], envs: { APPROVAL_LOG: join(root, "log") }, env_keys: [], timeout: 300, bundled: null, available_tools: [] };
    insertGooseSession(db, { id: GOOSE_ID, extensionData: { "enabled_extensions.v0": { extensions: [stdio] } }, columns: { goose_mode: "approve" } });
    db.close();
    h = await startHarness({}, { store: "goose-sqlite", sessionsDir });
  });
  afterAll(async () => {
    await h?.close();
    await rm(root, { recursive: true, force: true });
  });

  it("is honoured as goose stored it: the call asks; a deny is stored as goose's decision and the rows pass goose's read rules", async () => {
    expect((await getSession(h.client, GOOSE_ID, false)).session!.mode).toBe(M.PERMISSION_MODE_APPROVE);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_g", name: "fx__append", args: { line: "g" } }]) }, { events: openaiText("not run") });
    const stream = reply(h.client, GOOSE_ID, "append");
    await readUntil(stream, (e) => e.event?.$case === "approvalRequired");
    await confirm(h.client, GOOSE_ID, "call_g", P.TOOL_PERMISSION_DENY_ONCE);
    expect(finishReason(await rest(stream))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    expect(await lines(join(root, "log"))).toEqual([]);
    const db = openLikeGoose(join(root, "sessions", "sessions.db"));
    try {
      const rows = expectGooseReadable(db, GOOSE_ID);
      const decision = rows.flatMap((r) => r.content).find((c) => (c as { data?: { actionType?: string } }).data?.actionType === "toolConfirmationResponse");
      expect(decision).toEqual({ type: "actionRequired", data: { actionType: "toolConfirmationResponse", id: "call_g", permission: "deny_once" } });
      expect(db.prepare("SELECT goose_mode FROM sessions WHERE id = ?").get(GOOSE_ID)).toEqual({ goose_mode: "approve" });
    } finally {
      db.close();
    }
  });
});
