import type { ToolCallResult } from "@skein/goose-sessions/goose-format";

/**
 * Caps on what one run writes into the history. Without them one huge tool
 * result or model reply becomes a message no gRPC response can carry, and
 * every later model call pays for it. Whatever is cut is replaced by a note
 * the model and the user both read, as goose does for large tool output.
 */
export interface OutputLimits {
  /** Characters of one tool result (its text, resources and binary data together). */
  readonly maxToolResultChars: number;
  /** Characters of the model's text in one message, and of one tool call's JSON arguments. */
  readonly maxModelOutputChars: number;
}

type McpContent = Record<string, unknown>;

/** The characters an MCP content item holds: its text, resource text or base64 data; else its JSON. */
function itemChars(c: McpContent): number {
  if (typeof c.text === "string") return c.text.length;
  const r = c.resource;
  if (typeof r === "object" && r !== null) {
    const res = r as Record<string, unknown>;
    if (typeof res.text === "string") return res.text.length;
    if (typeof res.blob === "string") return res.blob.length;
  }
  if (typeof c.data === "string") return c.data.length;
  return JSON.stringify(c)?.length ?? 0;
}

export function toolResultNote(total: number, max: number): string {
  return (
    `[skein: the response returned from the tool call was larger (${total} characters) than the limit of ${max} characters ` +
    `(SKEIN_MAX_TOOL_RESULT_CHARS); only its first ${max} characters are kept. Ask for less, e.g. a range, a filter or a summary, to see more.]`
  );
}

/**
 * A successful tool result within `max` characters: items are kept in order
 * while they fit, a text (or text resource) item that does not is cut, other
 * items that do not fit are left out, and a note saying so ends the result.
 */
export function capToolContent(content: readonly McpContent[], max: number): McpContent[] {
  const sizes = content.map(itemChars);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total <= max) return [...content];
  const out: McpContent[] = [];
  let room = max;
  content.forEach((c, i) => {
    const size = sizes[i]!;
    if (size <= room) {
      out.push(c);
      room -= size;
      return;
    }
    if (room > 0 && typeof c.text === "string") out.push({ ...c, text: c.text.slice(0, room) });
    else if (room > 0 && isTextResource(c)) out.push({ ...c, resource: { ...c.resource, text: c.resource.text.slice(0, room) } });
    room = 0;
  });
  out.push({ type: "text", text: toolResultNote(total, max) });
  return out;
}

function isTextResource(c: McpContent): c is McpContent & { resource: Record<string, unknown> & { text: string } } {
  return typeof c.resource === "object" && c.resource !== null && typeof (c.resource as Record<string, unknown>).text === "string";
}

/** A tool's error text within `max` characters (an error result can be as large as any other). */
export function capToolError(error: string, max: number): string {
  return error.length <= max ? error : `${error.slice(0, max)}\n${toolResultNote(error.length, max)}`;
}

export function modelOutputNote(total: number, max: number): string {
  return `\n\n[skein: the model's reply was ${total} characters, over the limit of ${max} (SKEIN_MAX_MODEL_OUTPUT_CHARS); only its first ${max} characters are kept.]`;
}

/** A tool call whose JSON arguments are over `max` characters becomes an error the model reads; the tool is not run. */
export function capToolCall(call: ToolCallResult, max: number): ToolCallResult {
  if (call.status !== "success") return call;
  const size = JSON.stringify(call.value.arguments ?? {}).length;
  if (size <= max) return call;
  return {
    status: "error",
    error: `the arguments of tool ${call.value.name} were ${size} characters of JSON, over the limit of ${max} (SKEIN_MAX_MODEL_OUTPUT_CHARS); the tool was not called`,
  };
}
