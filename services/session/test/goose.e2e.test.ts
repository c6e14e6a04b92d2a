import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { call, collect, openaiText } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixturesDir } from "./support/goose-file.js";
import { createSession, finishReason, getSession, reply, startHarness, type Harness } from "./support/harness.js";

const FIXTURES = ["20250728_101010", "20250801_093000"];
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
  await mkdir(h.sessionsDir, { recursive: true });
  for (const id of FIXTURES) await copyFile(join(fixturesDir, `${id}.jsonl`), join(h.sessionsDir, `${id}.jsonl`));
});
afterAll(() => h?.close());

describe("sessions the goose CLI wrote", () => {
  it("are listed newest first with skein's own, across pages", async () => {
    const mine = await createSession(h.client);
    const ids: string[] = [];
    let pageToken = "";
    do {
      const page = await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({ pageSize: 1, pageToken }));
      ids.push(...page.sessions.map((s) => s.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(ids[0]).toBe(mine.id);
    expect(ids.slice(1).sort()).toEqual(FIXTURES);
    const all = await call(h.client, h.client.listSessions, pb.ListSessionsRequest.fromPartial({}));
    expect(all.sessions.find((s) => s.id === "20250728_101010")).toMatchObject({ description: "Berlin weather", messageCount: 4, totalTokens: 812, workingDir: "/tmp" });
  });

  it("are read with every content type, skipping the corrupt line", async () => {
    const got = await getSession(h.client, "20250801_093000");
    expect(got.messages).toHaveLength(4);
    const kinds = got.messages.flatMap((m) => m.content.map((c) => c.kind?.$case));
    expect(kinds).toEqual(["text", "thinking", "toolRequest", "other", "toolResponse", "other", "text"]);
    const other = got.messages[1]!.content[2]!.kind;
    expect(other).toEqual({ $case: "other", value: { type: "toolConfirmationRequest", id: "toolu_02", toolName: "developer__shell", arguments: { command: "ls" }, prompt: "Allow?" } });
    expect(got.messages[1]!.content[1]!.kind).toEqual({ $case: "toolRequest", value: { id: "toolu_01", name: "", arguments: undefined, error: "Could not interpret tool use parameters" } });
    expect(got.messages[0]).toMatchObject({ id: "msg_01", role: pb.Role.ROLE_USER, created: new Date(1754040600 * 1000) });
    const weather = await getSession(h.client, "20250728_101010");
    expect(weather.messages[1]!.content[0]!.kind).toEqual({
      $case: "toolRequest",
      value: { id: "call_5hvVKt0aj0RGRmrKEZECeJKV", name: "weather_extension__get_weather", arguments: { location: "Berlin, Germany" }, error: "" },
    });
  });

  it("are continued: old lines stay byte for byte, unknown metadata is kept, the history reaches the model", async () => {
    const path = join(h.sessionsDir, "20250728_101010.jsonl");
    const before = (await readFile(path, "utf8")).split("\n");
    h.model.enqueue({ events: openaiText("Still rainy.") });
    expect(finishReason(await collect(reply(h.client, "20250728_101010", "and tomorrow?")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const after = (await readFile(path, "utf8")).split("\n");
    expect(after.slice(1, before.length - 1)).toEqual(before.slice(1, -1));
    const meta = JSON.parse(after[0]!) as Record<string, unknown>;
    // Fewer than 4 user messages: the description is generated again, as goose does.
    expect(meta).toMatchObject({ description: "Fake model session", message_count: 6, extension_data: { "todo.v0": { content: "check weather" } }, accumulated_total_tokens: 1535 });
    const sent = h.model.requests.at(-1)!.messages as Record<string, unknown>[];
    expect(sent.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant", "user"]);
    expect(sent[3]).toEqual({ role: "tool", tool_call_id: "call_5hvVKt0aj0RGRmrKEZECeJKV", content: "Berlin: 21°C, light rain" });

    const damaged = join(h.sessionsDir, "20250801_093000.jsonl");
    h.model.enqueue({ events: openaiText("Fine.") });
    expect(finishReason(await collect(reply(h.client, "20250801_093000", "go on")))).toBe(pb.FinishReason.FINISH_REASON_STOP);
    const text = await readFile(damaged, "utf8");
    expect(text).toContain("\nthis line was damaged by a disk error {\n");
    expect(JSON.parse(text.split("\n")[0]!)).toMatchObject({ recipe: { title: "demo" } });
    // The error tool request goose stored is not offered to the model as a call without a result.
    const sent2 = h.model.requests.at(-1)!.messages as Record<string, unknown>[];
    expect(sent2.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
  });
});
