import { runAgent, type TurnEnd } from "../agent-loop/loop.js";
import { approvalGate, NO_TOOLS, resumeOf } from "./approval-turn.js";
import { agentView, compact } from "../agent-loop/compaction.js";
import { describeSession, wantsDescription } from "../agent-loop/description.js";
import { systemPrompt } from "../agent-loop/system-prompt.js";
import type { Provider } from "../providers/provider.js";
import {
  message,
  textItem,
  toolResponseItem,
  unansweredToolRequests,
  descriptionUserSet,
  pausedRun,
  sessionMode,
  withPausedRun,
  type GooseMessage,
  type GooseMetadata,
} from "@skein/goose-sessions/goose-format";
import { storeFault, type LoadedSession, type SessionStore } from "@skein/goose-sessions";
import type { RunEvent } from "./events.js";
import { startedBeforePersisted } from "./first-call.js";
import type { RunInput } from "./run-input.js";

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
export async function executeRun(r: RunInput): Promise<TurnEnd | "noop"> {
  const opened = r.opened ?? await r.history.open(r.store, r.sessionId).catch((err: unknown) => {
    const fault = storeFault(err, r.store.target);
    if (fault) return { fault };
    r.log.error({ err }, "could not read the session");
    return undefined;
  });
  if (!opened) {
    emit(r, { kind: "error", code: "SESSION_UNREADABLE", message: `session ${r.sessionId} could not be read` });
    return "error";
  }
  if ("fault" in opened) {
    emit(r, { kind: "error", code: opened.fault.eventCode, message: opened.fault.message });
    return "error";
  }
  // A paused turn goes on with its history as it is (no compaction between a tool call and its result).
  const loaded = r.resume ? opened.session : await autoCompact(r, opened.session);
  const mode = sessionMode(loaded.metadata);
  // Kept for the next reply only when every write went through as the run saw it (not after a compaction rewrite).
  let keepable = loaded === opened.session;
  // Every message of the session as stored (its length is message_count); `history` is what the model is sent.
  const stored = loaded.messages;
  const history = agentView(stored);
  let last: Tokens | undefined;
  const sum: Tokens = { input: 0, output: 0, total: 0 };
  // `write`: how the message is stored (by default appended on its own).
  const persist = async (m: GooseMessage, write: () => Promise<unknown> = () => r.store.append(r.sessionId, m)) => {
    try {
      await write();
    } catch (err) {
      keepable = false;
      throw err;
    }
    stored.push(m);
    emit(r, { kind: "message", message: m });
  };
  // The metadata update that closes the run, as of how it ended; `messageCount`: the session's messages then.
  const closing = (end: TurnEnd, described: string | undefined, messageCount: number) => (current: GooseMetadata) => {
    let next = nextMetadata(current, messageCount, last, sum);
    // The approval gate recorded the pause before announcing it; any other end clears it.
    if (end !== "paused" && pausedRun(next)) next = withPausedRun(next, undefined);
    // Checked again: a caller could not have set one meanwhile, but a goose CLI edit could.
    return described !== undefined && !descriptionUserSet(current) ? { ...next, description: described } : next;
  };
  // The session's description as known now: undefined while its model call runs.
  let describedNow: { readonly value: string | undefined } | undefined = { value: undefined };
  // Set when the reply's last message was stored together with the closing update (one commit): what that wrote.
  let closed: { readonly written: GooseMetadata | undefined } | undefined;
  const sink = {
    message: persist,
    lastMessage: (m: GooseMessage) => {
      const described = describedNow;
      const { store } = r;
      // Without the store's support, or with the description still being asked for, the run closes after the message as before.
      if (!store.appendClosing || !described) return persist(m);
      const count = stored.length + 1;
      return persist(m, async () => (closed = { written: await store.appendClosing!(r.sessionId, m, closing("stop", described.value, count), count) }));
    },
    textDelta: (text: string) => emit(r, { kind: "textDelta", text }),
    usage: (u: Tokens) => {
      last = { input: u.input, output: u.output, total: u.total };
      sum.input += u.input;
      sum.output += u.output;
      sum.total += u.total;
      emit(r, { kind: "usage", ...u });
    },
    error: (code: string, message: string) => emit(r, { kind: "error", code, message }),
  };
  const approvals = mode === "approve" || mode === "smart_approve" ? approvalGate(r, mode, persist) : undefined;
  // goose's chat mode: the model is offered no tools, and none runs.
  const tools = mode === "chat" ? NO_TOOLS : r.tools;
  let reason: TurnEnd = "error";
  let description: Promise<string | undefined> = Promise.resolve(undefined);
  if (r.resume) {
    try {
      const resume = await resumeOf(r, mode, loaded, persist);
      // Resumed already (another ConfirmToolCall, another replica): nothing to do or to report.
      if (!resume) return "noop";
      // Going on now: no longer shown as waiting (a replayed decision then resumes nothing).
      await r.store.updateMetadata(r.sessionId, (m) => withPausedRun(m, undefined));
      reason = await runAgent({ provider: r.provider, tools, system: systemPrompt(loaded.metadata.working_dir), history, maxTurns: r.maxTurns, limits: r.limits, signal: r.signal, sink, approvals, resume });
      if (reason === "cancelled") await noteInterruption(r, stored, persist);
    } catch (err) {
      reportFailure(r, err, "resuming the reply failed");
      reason = "error";
    }
  } else {
    try {
      const repair = repairTail(history);
      if (repair) {
        await persist(repair);
        history.push(repair);
      }
      const user = message("user", [textItem(r.text)]);
      history.push(user);
      // The model call starts while the user's message is being stored (its event waits for the store).
      const saving = persist(user);
      saving.catch(() => undefined);
      const describeAfterAnswer = !descriptionUserSet(loaded.metadata) && wantsDescription([...stored, user]);
      const all = describeAfterAnswer ? [...stored, user] : [];
      const provider = startedBeforePersisted(r.provider, saving, () => {
        if (!describeAfterAnswer) return;
        describedNow = undefined;
        description = describe(r, all);
        description.then((value) => (describedNow = { value }), () => undefined);
      });
      reason = await runAgent({
        provider,
        tools,
        system: systemPrompt(loaded.metadata.working_dir),
        history,
        maxTurns: r.maxTurns,
        limits: r.limits,
        signal: r.signal,
        sink,
        approvals,
      });
      // A run stopped before its first model call still reports a failed store of its message.
      await saving;
      if (reason === "cancelled") await noteInterruption(r, stored, persist);
    } catch (err) {
      reportFailure(r, err, "reply failed");
      reason = "error";
    }
  }
  try {
    const written = closed ? closed.written : await r.store.updateMetadata(r.sessionId, closing(reason, await description, stored.length));
    if (keepable && written) await r.history.keep(r.store, opened, stored, written);
  } catch (err) {
    r.log.error({ err }, "could not refresh the session metadata");
  }
  return reason;
}

function emit(r: RunInput, e: RunEvent): void {
  r.events.publish(r.requestId, e);
}

/** A storage fault is named as the gRPC status would name it (STORE_FULL, STORE_UNAVAILABLE, …); anything else is INTERNAL. */
function reportFailure(r: RunInput, err: unknown, what: string): void {
  const fault = storeFault(err, r.store.target);
  if (fault) {
    r.log.warn({ reason: fault.message }, "reply stopped by a storage fault");
    emit(r, { kind: "error", code: fault.eventCode, message: fault.message });
  } else {
    r.log.error({ err }, what);
    emit(r, { kind: "error", code: "INTERNAL", message: `the reply failed inside the service (request id ${r.requestId})` });
  }
}

/**
 * goose's CLI answers an interruption in the history, so it never shows two
 * user turns in a row: after tool results, "The tool calling loop was
 * interrupted. How would you like to proceed?"; after the user's own text, a
 * note that the model did not answer (goose drops that message instead; skein
 * keeps what was stored and says so). Partial model text was kept by the loop.
 * A store that refuses the write (a lost lease, a fault) leaves it out.
 */
async function noteInterruption(r: RunInput, stored: readonly GooseMessage[], persist: (m: GooseMessage) => Promise<void>): Promise<void> {
  const last = stored.at(-1);
  if (!last || last.role !== "user") return;
  const afterTools = last.content.some((c) => c.type === "toolResponse");
  const text = afterTools ? INTERRUPTED_AFTER_TOOLS : INTERRUPTED_BEFORE_ANSWER;
  try {
    await persist(message("assistant", [textItem(text)]));
  } catch (err) {
    r.log.warn({ err: (err as Error).message }, "could not note the interruption in the history");
  }
}

export const INTERRUPTED_AFTER_TOOLS = "The tool calling loop was interrupted. How would you like to proceed?";
export const INTERRUPTED_BEFORE_ANSWER = "The reply was interrupted before the model answered. How would you like to proceed?";

/** The session description, asked for alongside the reply; a failure is logged, never the run's. */
async function describe(r: RunInput, messages: readonly GooseMessage[]): Promise<string | undefined> {
  try {
    const d = await describeSession(r.provider, messages, r.signal);
    return d === "" ? undefined : d;
  } catch (err) {
    if (!r.signal.aborted) r.log.warn({ err: (err as Error).message }, "could not generate the session description");
    return undefined;
  }
}

/**
 * goose's auto-compaction: when the last model call's usage passed the
 * threshold, summarize the older messages before the new user message.
 * A failure is logged and the reply goes on with the full history.
 */
async function autoCompact(r: RunInput, loaded: LoadedSession): Promise<LoadedSession> {
  const { threshold, contextLimit } = r.compaction;
  const used = loaded.metadata.total_tokens ?? loaded.metadata.input_tokens ?? 0;
  if (threshold <= 0 || threshold >= 1 || used <= threshold * contextLimit) return loaded;
  try {
    const result = await compactAndStore(r.store, r.sessionId, r.provider, loaded, r.signal);
    if (!result) return loaded;
    r.log.info({ used, contextLimit, threshold }, "session compacted");
    return result.session;
  } catch (err) {
    r.log.warn({ err: (err as Error).message, used, contextLimit }, "auto-compaction failed; replying with the full history");
    return loaded;
  }
}

/**
 * Summarizes and rewrites the session file (atomically) with goose's
 * compaction records; the metadata's last-usage counts become the summary's
 * size, so the next run does not compact again at once.
 */
export async function compactAndStore(
  store: SessionStore,
  sessionId: string,
  provider: Provider,
  loaded: LoadedSession,
  signal: AbortSignal,
): Promise<{ session: LoadedSession; summary: string } | undefined> {
  const c = await compact(provider, loaded.messages, signal);
  if (!c) return undefined;
  const written = await store.rewrite(
    sessionId,
    (current): GooseMetadata => ({
      ...current,
      message_count: c.messages.length,
      total_tokens: c.usage.output,
      input_tokens: c.usage.output,
      output_tokens: 0,
      accumulated_total_tokens: (current.accumulated_total_tokens ?? 0) + c.usage.total,
      accumulated_input_tokens: (current.accumulated_input_tokens ?? 0) + c.usage.input,
      accumulated_output_tokens: (current.accumulated_output_tokens ?? 0) + c.usage.output,
    }),
    c.messages,
  );
  return { session: { ...loaded, ...written, messages: c.messages }, summary: c.summary };
}

/**
 * A session left by a crash (or by goose) can end in tool requests nobody
 * answered; providers refuse such a history, so answer them with an error
 * first, as goose does.
 */
export function repairTail(history: readonly GooseMessage[]): GooseMessage | undefined {
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
