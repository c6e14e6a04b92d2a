import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, openaiText, openaiToolCalls, processesUnder, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, everythingEntry, fixtureEntry } from "./extensions/helpers.js";
import { createWith, everythingExt, fixtureExt, listTools, stats } from "./support/extensions.js";
import { STORES, storedMessages } from "./support/stored.js";
import { finishReason, getSession, reply, startHarness, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;

/** The MCP content of a stored tool result: an array (JSONL, goose ≤1.16) or a CallToolResult's content (sessions.db). */
const resultItems = (r: unknown) => {
  const v = (r as { value?: unknown }).value;
  return (Array.isArray(v) ? v : (v as { content: unknown[] }).content) as { type: string; text: string }[];
};

describe.each(STORES)("sessions with MCP extensions on %s", (store) => {
  let h: Harness;
  let work: string;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_EXTENSION_KILL_GRACE_MS: "500" }, { store });
    work = await mkdtemp(join(tmpdir(), "skein-work-"));
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("runs the tool loop against the real server-everything: tools offered as extension__tool, results (and errors) go back, history paired", async () => {
    const s = await createWith(h.client, work, [everythingExt()]);
    expect(s.extensions.map((e) => e.name)).toEqual(["everything"]);
    h.model.enqueue(
      {
        events: openaiToolCalls([
          { id: "call_echo", name: "everything__echo", args: { message: "hello skein" } },
          { id: "call_add", name: "everything__get-sum", args: { a: 2, b: 3 } },
          { id: "call_nope", name: "everything__no_such_tool", args: {} },
        ]),
      },
      { events: openaiText("The echo said hello skein.") },
    );
    const before = h.model.requests.length;
    const events = await collect(reply(h.client, s.id, "echo something"));
    expect(finishReason(events)).toBe(STOP);
    const first = h.model.requests[before]!;
    const offered = (first.tools as { function: { name: string } }[]).map((t) => t.function.name);
    expect(offered).toContain("everything__echo");
    const second = h.model.requests[before + 1]!.messages as Record<string, unknown>[];
    const toolMsgs = second.filter((m) => m.role === "tool");
    expect(toolMsgs.find((m) => m.tool_call_id === "call_echo")).toEqual({ role: "tool", tool_call_id: "call_echo", content: "Echo: hello skein" });
    expect(String(toolMsgs.find((m) => m.tool_call_id === "call_nope")!.content)).toMatch(/^Error: .*no_such_tool/);

    const lines = await storedMessages(h, store, s.id);
    expect(lines.map((l) => l.role)).toEqual(["user", "assistant", "user", "assistant"]);
    const responses = (lines[2]!.content as Record<string, unknown>[]).map((c) => [c.type, c.id, (c.toolResult as { status: string }).status]);
    expect(responses).toEqual([
      ["toolResponse", "call_echo", "success"],
      ["toolResponse", "call_add", expect.any(String)],
      ["toolResponse", "call_nope", "error"],
    ]);
    const echo = [{ type: "text", text: "Echo: hello skein" }];
    expect((lines[2]!.content as Record<string, unknown>[])[0]!.toolResult).toEqual({ status: "success", value: store === "goose-jsonl" ? echo : { content: echo, isError: false } });
  });

  it("ListTools / AddExtension / RemoveExtension manage a live session's extensions and persist them", async () => {
    const s = await createWith(h.client, work, []);
    expect(await listTools(h.client, s.id)).toEqual([]);
    const added = await call(h.client, h.client.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId: s.id, extension: fixtureExt("fx") }));
    expect(added.tools.map((t) => t.name).sort()).toEqual(["fx__big", "fx__crash", "fx__fail", "fx__noise", "fx__pid", "fx__sleep", "fx__spawn-grandchild"]);
    expect(added.tools.every((t) => t.extension === "fx")).toBe(true);
    expect((await listTools(h.client, s.id)).length).toBe(7);
    const meta = (await getSession(h.client, s.id, false)).session!;
    expect(meta.extensions).toEqual([pb.ExtensionConfig.fromPartial({ name: "fx", cmd: process.execPath, args: [fixtureEntry], env: {}, timeoutSeconds: 300 })]);

    const dup = await rejection(call(h.client, h.client.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId: s.id, extension: fixtureExt("fx") })));
    expect(dup.code).toBe(status.ALREADY_EXISTS);

    await call(h.client, h.client.removeExtension, pb.RemoveExtensionRequest.fromPartial({ sessionId: s.id, name: "fx" }));
    expect(await listTools(h.client, s.id)).toEqual([]);
    expect((await getSession(h.client, s.id, false)).session!.extensions).toEqual([]);
    const missing = await rejection(call(h.client, h.client.removeExtension, pb.RemoveExtensionRequest.fromPartial({ sessionId: s.id, name: "fx" })));
    expect([missing.code, missing.details]).toEqual([status.NOT_FOUND, `extension fx is not in session ${s.id}`]);
  });

  it("rejects invalid extension configs naming the field, and leaves no session or process behind for one that cannot start", async () => {
    const bad = await rejection(call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [{ name: "x", cmd: "" }] })));
    expect([bad.code, bad.details]).toEqual([status.INVALID_ARGUMENT, "extensions[0].cmd: must be a non-empty command"]);
    const badName = await rejection(call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [{ name: "a__b", cmd: "x" }] })));
    expect(badName.details).toMatch(/^extensions\[0\]\.name: /);
    const s = await createWith(h.client, work, []);
    const addBad = await rejection(call(h.client, h.client.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId: s.id, extension: { name: "ok", cmd: "" } })));
    expect([addBad.code, addBad.details]).toEqual([status.INVALID_ARGUMENT, "extension.cmd: must be a non-empty command"]);
    const noExt = await rejection(call(h.client, h.client.addExtension, pb.AddExtensionRequest.fromPartial({ sessionId: s.id })));
    expect([noExt.code, noExt.details]).toEqual([status.INVALID_ARGUMENT, "extension: is required"]);

    const onDisk = (await stats(h.client)).sessionsOnDisk;
    const cannot = await rejection(
      call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [{ name: "ghost", cmd: "/no/such/binary" }] })),
    );
    expect(cannot.code).toBe(status.FAILED_PRECONDITION);
    expect(cannot.details).toMatch(/extension ghost failed to start: command not found/);
    expect((await stats(h.client)).sessionsOnDisk).toBe(onDisk);
  });

  it("a crashed extension becomes an error tool result, the run goes on, and the extension is started again on next use", async () => {
    const s = await createWith(h.client, work, [fixtureExt()]);
    h.model.enqueue(
      { events: openaiToolCalls([{ id: "call_crash", name: "fixture__crash", args: { why: "test" } }]) },
      { events: openaiToolCalls([{ id: "call_pid", name: "fixture__pid", args: {} }]) },
      { events: openaiText("Recovered.") },
    );
    const events = await collect(reply(h.client, s.id, "crash please"));
    expect(finishReason(events)).toBe(STOP);
    const lines = await storedMessages(h, store, s.id);
    const results = lines.flatMap((l) => (l.content as Record<string, unknown>[]).filter((c) => c.type === "toolResponse"));
    expect(results[0]!.toolResult).toMatchObject({ status: "error" });
    expect(String((results[0]!.toolResult as { error: string }).error)).toMatch(/crashed during fixture__crash: process exited with code 3/);
    expect(results[1]!.toolResult).toMatchObject({ status: "success" });
    expect(resultItems(results[1]!.toolResult)).toEqual([{ type: "text", text: expect.stringMatching(/^\d+$/) }]);
  });

  it("GetStats counts live agents, running replies, extension processes, sessions on disk", async () => {
    const st = await stats(h.client);
    expect(st.liveAgents).toBeGreaterThanOrEqual(4);
    expect(st.runningReplies).toBe(0);
    // This service's own extension processes: other test files running at once have theirs too.
    const svc = h.svc.proc.pid!;
    const running = processesUnder(svc, everythingEntry).length + processesUnder(svc, fixtureEntry).length;
    expect(st.extensionProcesses).toBe(running);
    expect(st.sessionsOnDisk).toBe((await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1000 }))).sessions.length);
    expect(st.evictions).toBe(0);
  });

  it("DeleteSession ends the session's extension processes", async () => {
    const s = await createWith(h.client, work, [fixtureExt("solo")]);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_pid", name: "solo__pid", args: {} }]) }, { events: openaiText("ok") });
    await collect(reply(h.client, s.id, "pid?"));
    const lines = await storedMessages(h, store, s.id);
    const pid = Number(resultItems((lines[2]!.content as { toolResult: unknown }[])[0]!.toolResult)[0]!.text);
    expect(alive(pid)).toBe(true);
    await call(h.client, h.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
    expect(alive(pid)).toBe(false);
  });
});
