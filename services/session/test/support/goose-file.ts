import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

export const fixturesDir = fileURLToPath(new URL("../../../../test/fixtures/goose-sessions/", import.meta.url));

export async function readLines(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
}

const META_KEYS = [
  "working_dir",
  "description",
  "schedule_id",
  "message_count",
  "total_tokens",
  "input_tokens",
  "output_tokens",
  "accumulated_total_tokens",
  "accumulated_input_tokens",
  "accumulated_output_tokens",
];
const intOrNull = (v: unknown) => v === null || Number.isInteger(v);

/**
 * Checks a session file line by line against goose's format: snake_case
 * metadata on line 1, then camelCase messages with unix-second `created`,
 * typed content, goose's toolRequest/toolResponse shapes, and every tool
 * request answered. Returns the parsed messages.
 */
export async function expectGooseFile(path: string): Promise<Record<string, unknown>[]> {
  const [meta, ...messages] = await readLines(path);
  expect(meta).toBeDefined();
  for (const k of META_KEYS) expect(Object.keys(meta!)).toContain(k);
  expect(typeof meta!.working_dir).toBe("string");
  expect(typeof meta!.description).toBe("string");
  expect(meta!.schedule_id).toBeNull();
  expect(meta!.message_count).toBe(messages.length);
  for (const k of META_KEYS.slice(4)) expect(intOrNull(meta![k])).toBe(true);
  const requested = new Set<string>();
  const answered = new Set<string>();
  for (const m of messages) {
    // goose 1.8/1.9 carry visibility metadata (compaction, tool approvals).
    expect(Object.keys(m).filter((k) => k !== "metadata").sort()).toEqual(["content", "created", "id", "role"]);
    if ("metadata" in m) expect(Object.keys(m.metadata as object).sort()).toEqual(["agentVisible", "userVisible"]);
    expect(m.id === null || typeof m.id === "string").toBe(true);
    expect(["user", "assistant"]).toContain(m.role);
    expect(Number.isInteger(m.created)).toBe(true);
    expect(m.created as number).toBeGreaterThan(1_600_000_000);
    expect(m.created as number).toBeLessThan(Date.now() / 1000 + 5);
    expect(Array.isArray(m.content)).toBe(true);
    for (const c of m.content as Record<string, unknown>[]) {
      if (c.type === "text") expect(Object.keys(c).sort()).toEqual(["text", "type"]);
      else if (c.type === "toolRequest") {
        expect(m.role).toBe("assistant");
        const call = c.toolCall as Record<string, unknown>;
        if (call.status === "success") {
          const v = call.value as Record<string, unknown>;
          expect(Object.keys(v).sort()).toEqual(["arguments", "name"]);
          expect(v.name).toMatch(/^[^_].*__.+$|^[A-Za-z0-9_-]+$/);
          expect(typeof v.arguments).toBe("object");
        } else {
          expect(call.status).toBe("error");
          expect(typeof call.error).toBe("string");
        }
        requested.add(c.id as string);
      } else if (c.type === "toolResponse") {
        expect(m.role).toBe("user");
        const result = c.toolResult as Record<string, unknown>;
        if (result.status === "success") expect(Array.isArray(result.value)).toBe(true);
        else {
          expect(result.status).toBe("error");
          expect(typeof result.error).toBe("string");
        }
        answered.add(c.id as string);
      } else if (c.type === "toolConfirmationRequest") {
        expect(m.role).toBe("assistant");
        expect(Object.keys(c).sort()).toEqual(["arguments", "id", "prompt", "toolName", "type"]);
      } else throw new Error(`unexpected content type ${String(c.type)} in a file skein wrote`);
    }
  }
  expect([...requested].filter((id) => !answered.has(id))).toEqual([]);
  return messages;
}
