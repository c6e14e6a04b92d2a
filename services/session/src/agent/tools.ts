import type { ToolSpec } from "../providers/provider.js";
import type { JsonObject } from "../store/goose-format.js";

export interface ToolResult {
  /** MCP content items. */
  readonly content: JsonObject[];
  /** The tool reported a failure (MCP isError). */
  readonly isError: boolean;
}

/**
 * The tools a session's agent offers the model. MCP extensions (the
 * agent-lifecycle issue) will be one source per session; until then sessions
 * get NO_TOOLS.
 */
export interface ToolSource {
  list(): ToolSpec[];
  /** Throws when the call fails; must stop when `signal` aborts. */
  call(name: string, args: JsonObject, signal: AbortSignal): Promise<ToolResult>;
}

export const NO_TOOLS: ToolSource = {
  list: () => [],
  call: (name) => Promise.reject(new Error(`tool ${name} does not exist`)),
};
