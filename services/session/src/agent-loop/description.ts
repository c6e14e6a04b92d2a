import type { Provider } from "../providers/provider.js";
import { message, textItem, textOf, type GooseMessage } from "@skein/goose-sessions/goose-format";

/** goose's own wording, so descriptions read the same whichever tool wrote the session. */
export const DESCRIPTION_SYSTEM = "Reply with only a description in four words or less";
const INSTRUCTION =
  "Based on the conversation so far, provide a concise description of this session in 4 words or less. This will be used for finding the session later in a UI with limited space - reply *ONLY* with the description";
const CONTEXT_MESSAGES = 3;
const CONTEXT_CHARS = 300;
export const MAX_DESCRIPTION_CHARS = 100;
/** goose describes a session after each of its first user messages, fewer than this many. */
const DESCRIBE_BELOW = 4;

function userTexts(messages: readonly GooseMessage[]): string[] {
  return messages.filter((m) => m.role === "user").map((m) => textOf(m.content)).filter((t) => t !== "");
}

/** Stops counting at the limit: a long history is not walked to its end at every reply. */
export function wantsDescription(messages: readonly GooseMessage[]): boolean {
  let n = 0;
  for (const m of messages) if (m.role === "user" && textOf(m.content) !== "" && ++n >= DESCRIBE_BELOW) return false;
  return true;
}

export function descriptionPrompt(messages: readonly GooseMessage[]): string {
  const context = userTexts(messages)
    .slice(0, CONTEXT_MESSAGES)
    .map((t) => (t.length > CONTEXT_CHARS ? `${t.slice(0, CONTEXT_CHARS)}...` : t));
  return context.length === 0 ? INSTRUCTION : `Here are the first few user messages:\n${context.join("\n")}\n\n${INSTRUCTION}`;
}

/** Asks the model once, non-streaming; whitespace collapsed, at most 100 characters. Throws on failure. */
export async function describeSession(provider: Provider, messages: readonly GooseMessage[], signal: AbortSignal): Promise<string> {
  const res = await provider.complete({ system: DESCRIPTION_SYSTEM, messages: [message("user", [textItem(descriptionPrompt(messages))])], signal });
  const text = res.text.split(/\s+/).filter(Boolean).join(" ");
  return [...text].slice(0, MAX_DESCRIPTION_CHARS).join("");
}
