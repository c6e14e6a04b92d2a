import { isObject, isToolRequest, isToolResponse, toolResultItems, type GooseMessage, type ToolResponseItem } from "@skein/goose-sessions/goose-format";

/**
 * Tool call ids the providers may see: successful requests that have a
 * response. Providers reject a call without its result (and vice versa), and
 * goose files can hold error requests or, after a crash, unanswered ones.
 */
export function pairedToolCallIds(messages: readonly GooseMessage[]): Set<string> {
  const answered = new Set<string>();
  for (const m of messages) for (const c of m.content) if (isToolResponse(c)) answered.add(c.id);
  const paired = new Set<string>();
  for (const m of messages) {
    for (const c of m.content) if (isToolRequest(c) && c.toolCall.status === "success" && answered.has(c.id)) paired.add(c.id);
  }
  return paired;
}

/** A tool result as text for the model: MCP text items as they are, others described. */
export function toolResultText(item: ToolResponseItem): string {
  const r = item.toolResult;
  if (r.status !== "success") return `Error: ${String((r as { error?: unknown }).error)}`;
  const parts = toolResultItems(r.value).map(mcpContentText);
  return parts.join("\n");
}

function mcpContentText(c: unknown): string {
  if (!isObject(c)) return "";
  if (c.type === "text" && typeof c.text === "string") return c.text;
  if (c.type === "resource" && isObject(c.resource)) return typeof c.resource.text === "string" ? c.resource.text : `[resource ${String(c.resource.uri)}]`;
  if (c.type === "image") return `[image ${String(c.mimeType)}]`;
  return JSON.stringify(c);
}
