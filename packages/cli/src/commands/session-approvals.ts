import { session } from "@skein/proto";
import { say, type Command, type Invocation } from "../command.js";
import { json, table } from "../format.js";
import { jsonOption } from "../options.js";
import { completeJson } from "../proto-json.js";
import { allSessions } from "../messages.js";

/** goose's mode names, as `goose_mode` and GOOSE_MODE spell them. */
export const MODES: Record<string, session.PermissionMode> = {
  auto: session.PermissionMode.PERMISSION_MODE_AUTO,
  approve: session.PermissionMode.PERMISSION_MODE_APPROVE,
  smart_approve: session.PermissionMode.PERMISSION_MODE_SMART_APPROVE,
  chat: session.PermissionMode.PERMISSION_MODE_CHAT,
};

export function modeName(m: session.PermissionMode): string {
  return Object.keys(MODES).find((k) => MODES[k] === m) ?? "auto";
}

export function parseMode(inv: Invocation, raw: string): session.PermissionMode {
  const m = MODES[raw];
  if (m === undefined) throw inv.usage(`MODE must be one of ${Object.keys(MODES).join(", ")}, got ${JSON.stringify(raw)}`);
  return m;
}

/** `developer__shell {"command":"ls"}`: how a waiting tool call is shown. */
export function approvalLine(a: session.ToolApprovalRequest): string {
  return `${a.toolName} ${JSON.stringify(a.arguments ?? {})}`;
}

const mode: Command = {
  name: "session mode",
  synopsis: "ID MODE",
  summary: "set a session's permission mode (auto, approve, smart_approve, chat)",
  services: ["session"],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    const m = parseMode(inv, inv.arg(1, "MODE"));
    inv.atMost(2);
    const s = inv.conn.session();
    await s.call(s.client.updateSession, session.UpdateSessionRequest.fromPartial({ sessionId: id, mode: m }));
    say(`${id}: ${modeName(m)}`);
    return 0;
  },
};

const approvals: Command = {
  name: "session approvals",
  synopsis: "[ID]",
  summary: "list tool calls waiting for approval (of one session, or of all)",
  options: jsonOption(),
  services: ["session"],
  async run(inv) {
    const id = inv.optionalArg(0);
    inv.atMost(1);
    const s = inv.conn.session();
    const sessions = id !== undefined ? [(await s.call(s.client.getSession, session.GetSessionRequest.fromPartial({ sessionId: id }))).session!] : await allSessions(s);
    const rows = sessions.flatMap((x) => x.pendingApprovals.map((a) => ({ session: x.id, approval: a })));
    if (inv.json) {
      say(json(rows.map((r) => ({ sessionId: r.session, ...(completeJson(session, "ToolApprovalRequest", r.approval) as object) }))));
      return 0;
    }
    if (rows.length === 0) {
      say("nothing waits for approval");
      return 0;
    }
    say(table(["session", "tool call", "tool"], rows.map((r) => [r.session, r.approval.toolCallId, approvalLine(r.approval)])));
    return 0;
  },
};

function decide(name: "approve" | "deny"): Command {
  const always = name === "approve" ? session.ToolPermission.TOOL_PERMISSION_ALWAYS_ALLOW : session.ToolPermission.TOOL_PERMISSION_ALWAYS_DENY;
  const once = name === "approve" ? session.ToolPermission.TOOL_PERMISSION_ALLOW_ONCE : session.ToolPermission.TOOL_PERMISSION_DENY_ONCE;
  return {
    name: `session ${name}`,
    synopsis: "ID TOOL_CALL_ID [--always]",
    summary: name === "approve" ? "run a tool call that waits for approval" : "refuse a tool call that waits for approval",
    options: { always: { type: "boolean", help: `also ${name === "approve" ? "allow" : "deny"} this tool from now on (goose's permission.yaml)` } },
    services: ["session"],
    async run(inv) {
      const id = inv.arg(0, "session ID");
      const call = inv.arg(1, "TOOL_CALL_ID");
      inv.atMost(2);
      const s = inv.conn.session();
      const permission = inv.flag("always") ? always : once;
      await s.call(s.client.confirmToolCall, session.ConfirmToolCallRequest.fromPartial({ sessionId: id, toolCallId: call, permission }));
      say(`${name === "approve" ? "approved" : "denied"} ${call}${inv.flag("always") ? " (always)" : ""}`);
      return 0;
    },
  };
}

export const approvalCommands: readonly Command[] = [mode, approvals, decide("approve"), decide("deny")];
