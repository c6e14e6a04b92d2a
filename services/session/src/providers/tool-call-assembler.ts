import { randomUUID } from "node:crypto";
import { isObject, type ToolCallResult } from "@skein/goose-sessions/goose-format";

/** A tool call still arriving: its pieces so far. */
interface PendingToolCall {
  id: string;
  name: string;
  args: string;
}

/**
 * Collects tool calls whose id, name and JSON arguments arrive in pieces across
 * stream chunks (keyed by the provider's index), and turns them into goose's
 * toolCall shape. Unparseable arguments become a toolCall error, as goose does.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, PendingToolCall>();

  add(index: number, piece: { id?: string | null; name?: string | null; args?: string | null }): void {
    let c = this.calls.get(index);
    if (!c) {
      c = { id: "", name: "", args: "" };
      this.calls.set(index, c);
    }
    if (piece.id) c.id = piece.id;
    if (piece.name) c.name += piece.name;
    if (piece.args) c.args += piece.args;
  }

  finish(): { id: string; call: ToolCallResult }[] {
    return [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, c]) => ({ id: c.id || `call_${randomUUID().replace(/-/g, "")}`, call: toToolCall(c) }));
  }
}

function toToolCall(c: PendingToolCall): ToolCallResult {
  if (c.name === "") return { status: "error", error: "the model called a tool without a name" };
  if (c.args.trim() === "") return { status: "success", value: { name: c.name, arguments: {} } };
  let parsed: unknown;
  try {
    parsed = JSON.parse(c.args);
  } catch (err) {
    return { status: "error", error: `could not parse the arguments of tool ${c.name} as JSON: ${(err as Error).message}` };
  }
  if (!isObject(parsed)) return { status: "error", error: `the arguments of tool ${c.name} are not a JSON object` };
  return { status: "success", value: { name: c.name, arguments: parsed } };
}
