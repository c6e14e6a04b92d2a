import { isObject, type ContentItem, type JsonObject } from "../goose-format/messages.js";

/**
 * The content types goose 1.47 deserializes (crates/goose-provider-types
 * conversation/message.rs). goose fails to load a whole session when one row
 * holds another type, so nothing else is ever written.
 */
export const GOOSE_CONTENT_TYPES: ReadonlySet<string> = new Set([
  "text",
  "image",
  "toolRequest",
  "toolResponse",
  "toolConfirmationRequest",
  "actionRequired",
  "frontendToolRequest",
  "thinking",
  "redactedThinking",
  "systemNotification",
  "error",
]);

/**
 * How the database's goose reads `toolResponse.toolResult.value`: an array of
 * MCP content up to goose ~1.16, a CallToolResult object `{content, isError?}`
 * since ~1.17 (1.17–1.19 reject the array, 1.16 rejects the object).
 */
export type ToolResultForm = "array" | "object";

export interface ConvertedContent {
  readonly content: JsonObject[];
  /** Types that could not be written and were left out, for the log. */
  readonly dropped: string[];
}

/**
 * The content as the database's goose reads it. Older goose types with a
 * current equivalent are converted (skein's JSONL compaction marker
 * `summarizationRequested` becomes a user-facing `systemNotification`,
 * `reasoning` becomes `thinking`); goose's own `conversationCompacted` marker,
 * which goose drops on read, and any type goose does not know are left out.
 */
export function toGooseContent(items: readonly ContentItem[], form: ToolResultForm): ConvertedContent {
  const content: JsonObject[] = [];
  const dropped: string[] = [];
  for (const c of items) {
    const converted = convertItem(c, form);
    if (converted) content.push(converted);
    else dropped.push(c.type);
  }
  return { content, dropped };
}

function convertItem(c: ContentItem, form: ToolResultForm): JsonObject | undefined {
  switch (c.type) {
    case "toolResponse":
      return toolResponseIn(c, form);
    case "summarizationRequested":
      return { type: "systemNotification", notificationType: "inlineMessage", msg: typeof c.msg === "string" ? c.msg : "Conversation compacted and summarized" };
    case "reasoning":
      return typeof c.text === "string" ? { type: "thinking", thinking: c.text, signature: "" } : undefined;
    default:
      return GOOSE_CONTENT_TYPES.has(c.type) ? c : undefined;
  }
}

function toolResponseIn(c: ContentItem, form: ToolResultForm): JsonObject {
  const r = c.toolResult;
  if (!isObject(r) || r.status !== "success") return c;
  const v = r.value;
  if (form === "object" && Array.isArray(v)) return { ...c, toolResult: { ...r, value: { content: v, isError: false } } };
  if (form === "array" && isObject(v) && Array.isArray(v.content)) return { ...c, toolResult: { ...r, value: v.content } };
  return c;
}

/** The form an existing database reads; see ToolResultForm. */
export function toolResultFormFor(schemaVersion: number, latestStoredValue: unknown): ToolResultForm {
  // Schema 7 arrived with goose 1.22, schema 6 with 1.16: 1.16 reads arrays, 1.17–1.21 objects.
  if (schemaVersion >= 7) return "object";
  if (schemaVersion <= 5) return "array";
  if (Array.isArray(latestStoredValue)) return "array";
  return "object";
}
