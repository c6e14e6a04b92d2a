// The session core's defects, end to end: each case here failed before the session slot.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, gate, openaiCompletion, openaiText, processesMarked, rejection, testMarker } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixtureEntry } from "./extensions/helpers.js";
import { STORES } from "./support/stored.js";
import { createSession, eventually, finishReason, getSession, reply, watch, startHarness, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;

describe.each(STORES)("session core on %s", (store) => {
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

  async function twoTurns(): Promise<pb.Session> {
    const s = await createSession(h.client, work);
    expect(finishReason(await collect(reply(h.client, s.id, "first turn")))).toBe(STOP);
    expect(finishReason(await collect(reply(h.client, s.id, "second turn")))).toBe(STOP);
    return s;
  }

  it("a cancelled SummarizeSession answers CANCELLED (defect 4)", async () => {
    const s = await twoTurns();
    const held = gate();
    h.model.enqueueCompletion({ ...openaiCompletion("too late"), hold: held.promise });
    const summary = rejection(call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })));
    await eventually(() => getSession(h.client, s.id, false), (r) => r.session!.runningRequestId === "summarize");
    const cancelled = await call(h.client, h.client.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: s.id }));
    expect(cancelled.cancelled).toBe(true);
    const err = await summary;
    held.release();
    expect(err.code).toBe(status.CANCELLED);
    expect(err.details).toMatch(/summarizing session .* was cancelled/);
  });

  it("DeleteSession during a summary: the summary is CANCELLED, no raw file error reaches the client (defect 4)", async () => {
    const s = await twoTurns();
    const held = gate();
    h.model.enqueueCompletion({ ...openaiCompletion("too late"), hold: held.promise });
    const summary = rejection(call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })));
    await eventually(() => getSession(h.client, s.id, false), (r) => r.session!.runningRequestId === "summarize");
    await call(h.client, h.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
    const err = await summary;
    held.release();
    expect(err.code).toBe(status.CANCELLED);
    expect(err.details).not.toContain(h.sessionsDir);
    expect((await rejection(getSession(h.client, s.id, false))).code).toBe(status.NOT_FOUND);
  });

  it("a client that gives up on CreateSession ends the extension being started and leaves no session (defect 6)", async () => {
    const marker = testMarker("slow-start");
    // Starts its MCP server only after a long sleep: the call's deadline passes first.
    const slow = pb.ExtensionConfig.fromPartial({ name: "slow", cmd: "sh", args: ["-c", `sleep 60; exec node ${fixtureEntry}`, marker], timeoutSeconds: 120 });
    const before = (await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1000 }))).sessions.length;
    const err = await rejection(
      new Promise((resolve, reject) =>
        h.client.createSession(pb.CreateSessionRequest.fromPartial({ workingDir: work, extensions: [slow] }), new Metadata(), { deadline: Date.now() + 1_500 }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      ),
    );
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    // Not left to run until its 120 s start timeout: ended as soon as the call was given up.
    await eventually(() => processesMarked(marker).length, (n) => n === 0);
    await eventually(
      async () => (await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1000 }))).sessions.length,
      (n) => n === before,
    );
    // The call's work ended with the call, not when the extension would have finished starting (after its 60 s sleep):
    // the bound tells the two apart on however loaded a machine, it measures nothing.
    const ended = h.svc.logs.find((l) => String(l.method ?? "").endsWith("/CreateSession") && l.msg === "call closed by client");
    expect(Number(ended?.durationMs)).toBeLessThan(60_000);
  });

  it("seq never repeats across a restart; a cursor from before it gets OUT_OF_RANGE reload (defect 7)", async () => {
    const s = await createSession(h.client, work);
    const first = await collect(reply(h.client, s.id, "before the restart"));
    const lastBefore = first.at(-1)!.seq;
    await h.restart({ SKEIN_EXTENSION_KILL_GRACE_MS: "500" });
    expect((await getSession(h.client, s.id, false)).session!.lastSeq).toBe(0);
    h.model.enqueue({ events: openaiText("after the restart") });
    const second = await collect(reply(h.client, s.id, "after the restart"));
    expect(finishReason(second)).toBe(STOP);
    expect(second[0]!.seq).toBeGreaterThan(lastBefore);
    const old = await rejection(collect(watch(h.client, s.id, lastBefore)));
    expect(old.code).toBe(status.OUT_OF_RANGE);
    expect(old.details).toMatch(/reload the session with GetSession/);
    // Restarted again: numbering moves on again, never back.
    await h.restart({ SKEIN_EXTENSION_KILL_GRACE_MS: "500" });
    const third = await collect(reply(h.client, s.id, "and again"));
    expect(third[0]!.seq).toBeGreaterThan(second.at(-1)!.seq);
  });
});
