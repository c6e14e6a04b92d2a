/**
 * goose's JSONL session format (goose 1.0.5–1.9): line 1 is snake_case
 * metadata, every further line one camelCase message. Values are kept as the
 * JSON objects goose wrote, so fields and content types skein does not know
 * round-trip unchanged; the helpers below only read and build the known shapes.
 */

export type JsonObject = { [key: string]: unknown };

export interface GooseMetadata extends JsonObject {
  working_dir: string;
  description: string;
  schedule_id: string | null;
  message_count: number;
  total_tokens: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  accumulated_total_tokens: number | null;
  accumulated_input_tokens: number | null;
  accumulated_output_tokens: number | null;
}

export type Role = "user" | "assistant";

/** One content item, tagged by `type`; unknown types are kept as they are. */
export interface ContentItem extends JsonObject {
  type: string;
}

export interface GooseMessage extends JsonObject {
  id: string | null;
  role: Role;
  /** Unix seconds. */
  created: number;
  content: ContentItem[];
}

export type ToolCallResult = { status: "success"; value: { name: string; arguments: JsonObject } } | { status: "error"; error: string };
/**
 * goose ≤1.16 stores a successful tool result as the array of MCP content; goose
 * ≥1.17 as a CallToolResult object `{content, isError?}`. Both are read; see toolResultItems.
 */
export type ToolResultResult = { status: "success"; value: JsonObject[] | CallToolResult } | { status: "error"; error: string };
export interface CallToolResult extends JsonObject {
  content: JsonObject[];
  isError?: boolean;
}

export interface TextItem extends ContentItem {
  type: "text";
  text: string;
}
export interface ToolRequestItem extends ContentItem {
  type: "toolRequest";
  id: string;
  toolCall: ToolCallResult;
}
export interface ToolResponseItem extends ContentItem {
  type: "toolResponse";
  id: string;
  toolResult: ToolResultResult;
}

export class FormatError extends Error {
  override name = "FormatError";
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isText(c: JsonObject): c is TextItem {
  return c.type === "text" && typeof c.text === "string";
}

/** The text of the text items, joined by `separator`: goose messages and MCP tool results share the item shape. */
export function textOf(content: readonly JsonObject[], separator = ""): string {
  return content
    .filter(isText)
    .map((c) => c.text)
    .join(separator);
}

export function isToolRequest(c: ContentItem): c is ToolRequestItem {
  return c.type === "toolRequest" && typeof c.id === "string" && isObject(c.toolCall);
}

export function isToolResponse(c: ContentItem): c is ToolResponseItem {
  return c.type === "toolResponse" && typeof c.id === "string" && isObject(c.toolResult);
}

/** The MCP content items of a successful tool result in either stored form. */
export function toolResultItems(value: unknown): JsonObject[] {
  if (Array.isArray(value)) return value.filter(isObject);
  if (isObject(value) && Array.isArray(value.content)) return value.content.filter(isObject);
  return [];
}

/** True when the tool call failed: an error status, or a CallToolResult marked isError. */
export function toolResultIsError(item: ToolResponseItem): boolean {
  const r = item.toolResult;
  return r.status !== "success" || (isObject(r.value) && r.value.isError === true);
}

export function defaultMetadata(workingDir: string, description: string): GooseMetadata {
  return {
    working_dir: workingDir,
    description,
    schedule_id: null,
    message_count: 0,
    total_tokens: null,
    input_tokens: null,
    output_tokens: null,
    accumulated_total_tokens: null,
    accumulated_input_tokens: null,
    accumulated_output_tokens: null,
  };
}

/** True when a parsed line 1 is metadata rather than a message (old goose files have none). */
export function looksLikeMetadata(v: unknown): v is JsonObject {
  return isObject(v) && !("role" in v && "content" in v);
}

/** Fills the fields goose requires, keeping whatever else the line carries. */
export function normalizeMetadata(v: JsonObject): GooseMetadata {
  const base = defaultMetadata(typeof v.working_dir === "string" ? v.working_dir : "", typeof v.description === "string" ? v.description : "");
  const out: GooseMetadata = { ...base, ...v } as GooseMetadata;
  if (typeof out.message_count !== "number") out.message_count = 0;
  return out;
}

export function parseMessage(line: string): GooseMessage {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new FormatError(`not JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) throw new FormatError("not a JSON object");
  if (v.role !== "user" && v.role !== "assistant") throw new FormatError("role is not user or assistant");
  if (typeof v.created !== "number") throw new FormatError("created is not a number");
  if (v.id !== undefined && v.id !== null && typeof v.id !== "string") throw new FormatError("id is not a string or null");
  if (!Array.isArray(v.content) || !v.content.every((c) => isObject(c) && typeof c.type === "string")) {
    throw new FormatError("content is not a list of typed items");
  }
  return { ...v, id: (v.id as string | null | undefined) ?? null } as GooseMessage;
}

export function serializeLine(v: JsonObject): string {
  return `${JSON.stringify(v)}\n`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function message(role: Role, content: ContentItem[], created = nowSeconds()): GooseMessage {
  return { id: null, role, created, content };
}

export function textItem(text: string): TextItem {
  return { type: "text", text };
}

export function toolRequestItem(id: string, call: ToolCallResult): ToolRequestItem {
  return { type: "toolRequest", id, toolCall: call };
}

export function toolResponseItem(id: string, result: ToolResultResult): ToolResponseItem {
  return { type: "toolResponse", id, toolResult: result };
}

/** Tool requests of the message with no response in `later`: what a stop must answer. */
export function unansweredToolRequests(assistant: GooseMessage, later: readonly GooseMessage[]): ToolRequestItem[] {
  const answered = new Set(later.flatMap((m) => m.content.filter(isToolResponse).map((c) => c.id)));
  return assistant.content.filter(isToolRequest).filter((c) => !answered.has(c.id));
}
