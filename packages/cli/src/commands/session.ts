import { resolve } from "node:path";
import { session } from "@skein/proto";
import { say, type Command } from "../command.js";
import { age, json, localTime, table } from "../format.js";
import { renderMessage } from "../render.js";
import { jsonOption, type Options } from "../options.js";
import { completeJson } from "../proto-json.js";
import { allSessions, wholeSession } from "../messages.js";
import { approvalCommands, approvalLine, MODES, modeName, parseMode } from "./session-approvals.js";

const NEW_SESSION_OPTIONS: Options = {
  dir: { type: "string", value: "D", help: "working directory of the agent (default: the current directory)", complete: "directory" },
  description: { type: "string", value: "T", help: "a description shown by `skein session ls`" },
  mode: { type: "string", value: "M", help: "permission mode: auto, approve, smart_approve or chat (default: the service's)", choices: Object.keys(MODES) },
};

const newSession: Command = {
  name: "session new",
  synopsis: "[--dir D] [--description T] [--mode M]",
  summary: "create an empty session (prints its id)",
  options: { ...NEW_SESSION_OPTIONS, ...jsonOption() },
  services: ["session"],
  async run(inv) {
    inv.atMost(0);
    const raw = inv.string("mode");
    const mode = raw === undefined ? undefined : parseMode(inv, raw);
    const s = inv.conn.session();
    const res = await s.call(
      s.client.createSession,
      session.CreateSessionRequest.fromPartial({ workingDir: resolve(inv.string("dir") ?? "."), description: inv.string("description"), mode }),
    );
    say(inv.json ? json(completeJson(session, "CreateSessionResponse", res)) : res.session!.id);
    return 0;
  },
};

const ls: Command = {
  name: "session ls",
  synopsis: "",
  summary: "list sessions, newest first (id, description, messages, updated)",
  options: jsonOption(),
  services: ["session"],
  async run(inv) {
    inv.atMost(0);
    const all = await allSessions(inv.conn.session());
    if (inv.json) {
      say(json(completeJson(session, "ListSessionsResponse", session.ListSessionsResponse.fromPartial({ sessions: all }))));
      return 0;
    }
    if (all.length === 0) {
      say("no sessions");
      return 0;
    }
    const state = (x: session.Session) => (x.runningRequestId ? "replying" : x.pendingApprovals.length > 0 ? `waiting for approval (${x.pendingApprovals.length})` : "");
    const rows = all.map((x) => [x.id, x.description || "-", String(x.messageCount), `${age(x.updatedAt)} ago`, state(x)]);
    say(table(["id", "description", "messages", "updated", ""], rows));
    return 0;
  },
};

const show: Command = {
  name: "session show",
  synopsis: "ID",
  summary: "show a session's metadata and messages",
  options: jsonOption(),
  services: ["session"],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    inv.atMost(1);
    const s = inv.conn.session();
    const res = await wholeSession(s, id);
    if (inv.json) {
      say(json(completeJson(session, "GetSessionResponse", res)));
      return 0;
    }
    const m = res.session!;
    const tokens = m.accumulatedTotalTokens ?? m.totalTokens;
    const fields: [string, string][] = [
      ["id", m.id],
      ["description", m.description || "-"],
      ["working dir", m.workingDir],
      ["messages", String(m.messageCount)],
      ["tokens", tokens === undefined ? "-" : `${tokens} (in ${m.accumulatedInputTokens ?? m.inputTokens ?? "?"}, out ${m.accumulatedOutputTokens ?? m.outputTokens ?? "?"})`],
      ["updated", `${localTime(m.updatedAt)} (${age(m.updatedAt)} ago)`],
      ["last seq", String(m.lastSeq)],
      ["mode", modeName(m.mode)],
    ];
    for (const a of m.pendingApprovals) fields.push(["waits for", `${a.toolCallId}: ${approvalLine(a)}`]);
    if (m.runningRequestId) fields.push(["replying", `request ${m.runningRequestId}`]);
    if (m.extensions.length > 0) fields.push(["extensions", m.extensions.map((e) => e.name).join(", ")]);
    const width = Math.max(...fields.map(([k]) => k.length));
    for (const [k, v] of fields) say(`${k.padEnd(width)}  ${v}`);
    if (res.messages.length > 0) say();
    const names = new Map<string, string>();
    for (const msg of res.messages) for (const line of renderMessage(msg, names)) say(line);
    return 0;
  },
};

const rm: Command = {
  name: "session rm",
  synopsis: "ID",
  summary: "delete a session (a running reply is cancelled first)",
  services: ["session"],
  async run(inv) {
    const id = inv.arg(0, "session ID");
    inv.atMost(1);
    const s = inv.conn.session();
    await s.call(s.client.deleteSession, session.DeleteSessionRequest.fromPartial({ sessionId: id }));
    say(`deleted ${id}`);
    return 0;
  },
};

export const sessionCommands: readonly Command[] = [newSession, ls, show, rm, ...approvalCommands];
