import type { Logger } from "@skein/runtime";
import { runAgent, type FinishKind } from "../agent/loop.js";
import { systemPrompt } from "../agent/system-prompt.js";
import type { ToolSource } from "../agent/tools.js";
import type { Provider } from "../providers/provider.js";
import {
  message,
  textItem,
  toolResponseItem,
  unansweredToolRequests,
  type GooseMessage,
  type GooseMetadata,
} from "../store/goose-format.js";
import type { SessionStore } from "../store/session-store.js";
import type { RunEvent } from "./events.js";

export interface RunInput {
  readonly sessionId: string;
  readonly requestId: string;
  readonly text: string;
  readonly store: SessionStore;
  readonly provider: Provider;
  readonly tools: ToolSource;
  readonly maxTurns: number;
  readonly signal: AbortSignal;
  readonly emit: (e: RunEvent) => void;
  readonly log: Logger;
}

interface Tokens {
  input: number;
  output: number;
  total: number;
}

/**
 * One reply, from the user's message to the metadata rewrite. Never throws:
 * every way it ends is reported as events, and the caller emits `finished`
 * with the returned reason.
 */
export async function executeRun(r: RunInput): Promise<FinishKind> {
  const loaded = await r.store.load(r.sessionId).catch((err: unknown) => {
    r.log.error({ err }, "could not read the session");
    return undefined;
  });
  if (!loaded) {
    r.emit({ kind: "error", code: "SESSION_UNREADABLE", message: `session ${r.sessionId} could not be read` });
    return "error";
  }
  const history = loaded.messages;
  let last: Tokens | undefined;
  const sum: Tokens = { input: 0, output: 0, total: 0 };
  const persist = async (m: GooseMessage) => {
    await r.store.append(r.sessionId, m);
    r.emit({ kind: "message", message: m });
  };
  let reason: FinishKind = "error";
  try {
    const repair = repairTail(history);
    if (repair) {
      await persist(repair);
      history.push(repair);
    }
    const user = message("user", [textItem(r.text)]);
    await persist(user);
    history.push(user);
    reason = await runAgent({
      provider: r.provider,
      tools: r.tools,
      system: systemPrompt(loaded.metadata.working_dir),
      history,
      maxTurns: r.maxTurns,
      signal: r.signal,
      sink: {
        message: persist,
        textDelta: (text) => r.emit({ kind: "textDelta", text }),
        usage: (u) => {
          last = { input: u.input, output: u.output, total: u.total };
          sum.input += u.input;
          sum.output += u.output;
          sum.total += u.total;
          r.emit({ kind: "usage", ...u });
        },
        error: (code, message) => r.emit({ kind: "error", code, message }),
      },
    });
  } catch (err) {
    r.log.error({ err }, "reply failed");
    r.emit({ kind: "error", code: "INTERNAL", message: `the reply failed inside the service (request id ${r.requestId})` });
    reason = "error";
  }
  try {
    await r.store.writeMetadata(r.sessionId, nextMetadata(loaded.metadata, history.length, last, sum));
  } catch (err) {
    r.log.error({ err }, "could not refresh the session metadata");
  }
  return reason;
}

/**
 * A session left by a crash (or by goose) can end in tool requests nobody
 * answered; providers refuse such a history, so answer them with an error
 * first, as goose does.
 */
function repairTail(history: readonly GooseMessage[]): GooseMessage | undefined {
  const i = history.findLastIndex((m) => m.role === "assistant");
  if (i < 0) return undefined;
  const open = unansweredToolRequests(history[i]!, history.slice(i + 1));
  if (open.length === 0) return undefined;
  return message(
    "user",
    open.map((c) => toolResponseItem(c.id, { status: "error", error: "the reply was interrupted before this tool call finished" })),
  );
}

function nextMetadata(meta: GooseMetadata, messageCount: number, last: Tokens | undefined, sum: Tokens): GooseMetadata {
  if (!last) return { ...meta, message_count: messageCount };
  return {
    ...meta,
    message_count: messageCount,
    total_tokens: last.total,
    input_tokens: last.input,
    output_tokens: last.output,
    accumulated_total_tokens: (meta.accumulated_total_tokens ?? 0) + sum.total,
    accumulated_input_tokens: (meta.accumulated_input_tokens ?? 0) + sum.input,
    accumulated_output_tokens: (meta.accumulated_output_tokens ?? 0) + sum.output,
  };
}
