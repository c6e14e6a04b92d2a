import type { GooseMode } from "@skein/goose-sessions/goose-format";
import type { ToolSpec } from "../extensions/tool-source.js";

/** What happens to one tool call before it runs. */
export type Verdict = "run" | "ask" | "deny";

/** goose's per-tool permissions (permission.yaml), as the policy reads them. */
export interface ToolPermissions {
  level(category: "user" | "smart_approve", tool: string): Promise<"always_allow" | "ask_before" | "never_allow" | undefined>;
}

/**
 * goose's permission check per mode (permission/permission_inspector.rs):
 * a person's always-allow / never-allow decides first; `approve` asks for the
 * rest; `smart_approve` runs tools annotated read-only (and those goose's judge
 * cached as allowed) and asks for the rest. `auto` and `chat` need no policy:
 * the loop runs without one (auto costs nothing extra per call).
 */
export async function verdictFor(mode: GooseMode, tool: string, tools: readonly ToolSpec[], permissions: ToolPermissions): Promise<Verdict> {
  if (mode === "auto") return "run";
  const user = await permissions.level("user", tool);
  if (user === "always_allow") return "run";
  if (user === "never_allow") return "deny";
  if (mode !== "smart_approve") return "ask";
  if (tools.some((t) => t.name === tool && t.readOnly === true)) return "run";
  return (await permissions.level("smart_approve", tool)) === "always_allow" ? "run" : "ask";
}

/** goose's DECLINED_RESPONSE, the tool result of a denied call. */
export const DECLINED_RESPONSE =
  "The user has declined to run this tool. DO NOT attempt to call this tool again. If there are no alternative methods to proceed, clearly explain the situation and STOP.";

export const CANCELLED_APPROVAL = "The reply was cancelled while this tool call waited for approval; it did not run.";

export function timedOutApproval(ms: number): string {
  return `No decision came within ${ms} ms (SKEIN_APPROVAL_TIMEOUT_MS), so the tool call was denied. ${DECLINED_RESPONSE}`;
}
