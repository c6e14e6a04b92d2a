import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { anthropicText, anthropicToolUse, closeClients, collect, connect, startAnthropicServer, startService, type FakeModelServer, type ServiceProcess } from "@skein/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { expectGooseFile } from "./support/goose-file.js";
import { cases, createSession, finishReason, reply } from "./support/harness.js";

let dir: string;
let model: FakeModelServer;
let svc: ServiceProcess;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-anthropic-"));
  model = await startAnthropicServer();
  svc = await startService("session", {
    HOME: dir,
    SKEIN_SESSIONS_DIR: join(dir, "sessions"),
    SKEIN_SESSION_STORE: "goose-jsonl",
    SKEIN_PROVIDER: "anthropic",
    SKEIN_MODEL: "fake-claude",
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${model.port}`,
    ANTHROPIC_API_KEY: "test-key",
    SKEIN_PROVIDER_MAX_RETRIES: "0",
  });
});
afterAll(async () => {
  closeClients();
  await svc?.stop("SIGKILL");
  await model?.close();
  await rm(dir, { recursive: true, force: true });
});

it("replies through the Anthropic Messages API, tool_use input split across deltas", async () => {
  const c = connect(pb.SessionServiceClient, svc.address);
  const s = await createSession(c);
  model.enqueue({ events: anthropicToolUse({ id: "toolu_1", name: "weather__get", input: { city: "Berlin" } }, { pieces: 4 }) }, { events: anthropicText("It rains.") });
  const events = await collect(reply(c, s.id, "weather?"));
  expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_STOP);
  expect(cases(events).filter((k) => k === "message")).toHaveLength(4);
  const second = model.requests.at(-1)!;
  expect(second).toMatchObject({ model: "fake-claude", stream: true, max_tokens: 4096 });
  expect(second.messages).toEqual([
    { role: "user", content: [{ type: "text", text: "weather?" }] },
    { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "weather__get", input: { city: "Berlin" } }] },
    { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "Error: tool weather__get does not exist", is_error: true }] },
  ]);
  const lines = await expectGooseFile(join(dir, "sessions", `${s.id}.jsonl`));
  expect(lines.at(-1)).toMatchObject({ role: "assistant", content: [{ type: "text", text: "It rains." }] });
});

it("skips pings and ends the run with PROVIDER_ERROR on an error event inside the stream, as the SDK's stream would", async () => {
  const c = connect(pb.SessionServiceClient, svc.address);
  const s = await createSession(c);
  const text = anthropicText("fine", { pieces: 2 });
  model.enqueue(
    { events: [text[0]!, { event: "ping", data: JSON.stringify({ type: "ping" }) }, ...text.slice(1)] },
    { events: [text[0]!, { event: "error", data: JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } }) }] },
  );
  expect(finishReason(await collect(reply(c, s.id, "one")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
  const events = await collect(reply(c, s.id, "two"));
  expect(finishReason(events)).toBe(pb.FinishReason.FINISH_REASON_ERROR);
  const errors = events.flatMap((e) => (e.event?.$case === "error" ? [e.event.value] : []));
  expect(errors).toEqual([{ code: "PROVIDER_ERROR", message: "the provider reported an error: Overloaded" }]);
});
