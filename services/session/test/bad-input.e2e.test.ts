import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, rejection } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession, reply, startHarness, type Harness } from "./support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ SKEIN_MAX_MESSAGE_CHARS: "50" });
});
afterAll(() => h?.close());

const BAD_IDS = ["", "../x", "/", "a/b", "a\0b", "..", ".hidden"];

describe("bad input", () => {
  it.each(BAD_IDS)("session id %j is INVALID_ARGUMENT on every RPC, before any path is built", async (id) => {
    const c = h.client;
    const errs = await Promise.all([
      rejection(call(c, c.getSession, pb.GetSessionRequest.fromPartial({ sessionId: id }))),
      rejection(call(c, c.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: id }))),
      rejection(call(c, c.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: id }))),
      rejection(collect(reply(c, id, "hi"))),
      rejection(collect(c.watchSession(pb.WatchSessionRequest.fromPartial({ sessionId: id })))),
    ]);
    for (const e of errs) {
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toMatch(/^session_id: /);
    }
  });

  it("unknown sessions are NOT_FOUND", async () => {
    const c = h.client;
    const id = "7d0c3a4e-9a51-4c34-9d7a-0f1f2e3d4c5b";
    // rejection() at once: a call failing before the loop reaches it must not count as unhandled.
    for (const p of [
      call(c, c.getSession, pb.GetSessionRequest.fromPartial({ sessionId: id })),
      call(c, c.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: id })),
      call(c, c.cancelReply, pb.CancelReplyRequest.fromPartial({ sessionId: id })),
      collect(reply(c, id, "hi")),
    ].map(rejection)) {
      const e = await p;
      expect(e.code).toBe(status.NOT_FOUND);
      expect(e.details).toBe(`session ${id} does not exist`);
    }
  });

  it("text must be 1..SKEIN_MAX_MESSAGE_CHARS characters, and the limit is in the message", async () => {
    const s = await createSession(h.client);
    const empty = await rejection(collect(reply(h.client, s.id, "")));
    expect([empty.code, empty.details]).toEqual([status.INVALID_ARGUMENT, "text: must not be empty"]);
    const long = await rejection(collect(reply(h.client, s.id, "x".repeat(51))));
    expect(long.code).toBe(status.INVALID_ARGUMENT);
    expect(long.details).toMatch(/text: must be at most 50 characters .* got 51/);
    const badRequestId = await rejection(collect(reply(h.client, s.id, "hi", "has spaces")));
    expect(badRequestId.details).toMatch(/^request_id: /);
  });

  it("working_dir must be an existing directory", async () => {
    const file = join(h.dir, "a-file");
    await writeFile(file, "x");
    for (const [dir, why] of [
      ["", /working_dir: must not be empty/],
      ["relative/path", /working_dir: must be an absolute path/],
      [join(h.dir, "missing"), /working_dir: .* is not an existing directory/],
      [file, /working_dir: .* is not an existing directory/],
    ] as const) {
      const e = await rejection(call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: dir })));
      expect(e.code).toBe(status.INVALID_ARGUMENT);
      expect(e.details).toMatch(why);
    }
  });

  it("page_size and page_token are checked", async () => {
    const big = await rejection(call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1001 })));
    expect([big.code, big.details]).toEqual([status.INVALID_ARGUMENT, "page_size: must be at most 1000"]);
    const token = await rejection(call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageToken: "nope" })));
    expect([token.code, token.details]).toEqual([status.INVALID_ARGUMENT, "page_token: is not a token this service issued"]);
  });

  it("files in the directory that are not sessions are not listed", async () => {
    await mkdir(h.sessionsDir, { recursive: true });
    await writeFile(join(h.sessionsDir, ".hidden.jsonl"), "{}\n");
    await writeFile(join(h.sessionsDir, "notes.txt"), "x");
    const page = await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1000 }));
    expect(page.sessions.map((s) => s.id).filter((id) => id.startsWith(".") || id.startsWith("notes"))).toEqual([]);
  });

  it("the agent-lifecycle RPCs answer NOT_FOUND for an unknown session", async () => {
    const sessionId = "7d0c3a4e-9a51-4c34-9d7a-0f1f2e3d4c5b";
    for (const p of [
      call(h.client, h.client.listTools, pb.ListToolsRequest.fromPartial({ sessionId })),
      call(h.client, h.client.removeExtension, pb.RemoveExtensionRequest.fromPartial({ sessionId, name: "x" })),
      call(h.client, h.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId })),
    ].map(rejection)) {
      const e = await p;
      expect([e.code, e.details]).toEqual([status.NOT_FOUND, `session ${sessionId} does not exist`]);
    }
  });
});

describe("no provider configured", () => {
  let hn: Harness;
  beforeAll(async () => {
    hn = await startHarness({}, { provider: false });
  });
  afterAll(() => hn?.close());

  it("the service starts, sessions work, and Reply says which variables to set", async () => {
    const s = await createSession(hn.client);
    const e = await rejection(collect(reply(hn.client, s.id, "hello")));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/SKEIN_PROVIDER.*SKEIN_MODEL.*OPENAI_API_KEY.*GOOSE_PROVIDER/);
  });
});
