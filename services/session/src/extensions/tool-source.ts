/**
 * The seam between the agent's tool loop and wherever tools come from. The
 * agent only sees this shape; MCP extensions (ExtensionSet) are one source.
 */

/** A tool as offered to the model: `name` is `<extension>__<tool>`. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  extension: string;
  /** The MCP annotation readOnlyHint: true (smart_approve runs such a tool without asking). */
  readOnly?: boolean;
}

/**
 * The outcome of one tool call. `content` holds MCP content items (e.g.
 * `{type: "text", text}`) as goose stores them in `toolResult.value`. A failing
 * tool, a timeout, a cancelled call or a crashed extension are all results with
 * `isError: true` and a human-readable `error`: the tool loop never has to catch.
 */
export interface ToolResult {
  content: Array<Record<string, unknown>>;
  isError: boolean;
  error?: string;
}

export interface ToolSource {
  list(): ToolSpec[];
  /** Never throws: an unknown name, too, is an error result (`tool <name> does not exist`). */
  call(name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult>;
  close(): Promise<void>;
}

/** An error result whose single text item repeats the message, so a model sees it either way. */
export function errorResult(message: string): ToolResult {
  return { content: [{ type: "text", text: message }], isError: true, error: message };
}
