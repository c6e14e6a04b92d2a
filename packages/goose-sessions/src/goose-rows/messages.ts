import { randomUUID } from "node:crypto";
import { FormatError, isObject, type ContentItem, type GooseMessage } from "../goose-format/messages.js";
import { toGooseContent, type ToolResultForm } from "./content.js";
import { messageSeconds, parseJsonObject, type Row } from "./rows.js";

/** goose's rule for a message without an id. */
export function newMessageId(sessionId: string): string {
  return `msg_${sessionId}_${randomUUID()}`;
}

/** metadata_json: goose requires both visibility flags; other keys (goose's or skein's) ride along. */
export function metadataJson(m: GooseMessage): string {
  const meta = isObject(m.metadata) ? m.metadata : {};
  return JSON.stringify({ ...meta, userVisible: meta.userVisible !== false, agentVisible: meta.agentVisible !== false });
}

export interface PreparedMessage {
  readonly messageId: string;
  readonly role: "user" | "assistant";
  readonly contentJson: string;
  readonly metadataJson: string;
  readonly created: number;
  /** Content types left out because goose cannot read them. */
  readonly dropped: string[];
}

/** The row values for a message, or undefined when nothing goose can read is left of its content. */
export function prepareMessage(sessionId: string, m: GooseMessage, form: ToolResultForm): PreparedMessage | undefined {
  const { content, dropped } = toGooseContent(m.content, form);
  if (content.length === 0 && m.content.length > 0) return undefined;
  return {
    messageId: m.id ?? newMessageId(sessionId),
    role: m.role,
    contentJson: JSON.stringify(content),
    metadataJson: metadataJson(m),
    created: m.created,
    dropped,
  };
}

/** A messages row as the domain's message, by goose's read rules; throws FormatError for content goose could not load. */
export function messageOfRow(row: Row): GooseMessage {
  let content: unknown;
  try {
    content = JSON.parse(String(row.content_json));
  } catch (err) {
    throw new FormatError(`content_json is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(content) || !content.every((c) => isObject(c) && typeof c.type === "string")) throw new FormatError("content_json is not a list of typed items");
  const m: GooseMessage = {
    id: typeof row.message_id === "string" ? row.message_id : null,
    role: row.role as "user" | "assistant",
    created: messageSeconds(Number(row.created_timestamp)),
    content: content as ContentItem[],
  };
  // Unparsable metadata is left out, so it reads as both flags true, as in goose.
  const meta = parseJsonObject(row.metadata_json);
  if (meta) m.metadata = meta;
  return m;
}

