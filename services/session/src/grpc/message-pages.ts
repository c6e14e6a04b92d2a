import { InvalidArgumentError } from "@skein/runtime";

/** Most messages one GetSession page may ask for. */
export const MAX_MESSAGE_PAGE = 10_000;

/** A validated GetSession message page request: where to start, how many at most (0: as many as fit). */
export interface MessagePageRequest {
  readonly start: number;
  readonly size: number;
}

/** Checks message_page_size and message_page_token against a history of `total` messages. */
export function messagePageRequest(size: number, token: string, total: number): MessagePageRequest {
  if (size > MAX_MESSAGE_PAGE) throw new InvalidArgumentError("message_page_size", `must be at most ${MAX_MESSAGE_PAGE}, got ${size}`);
  const start = token === "" ? 0 : decodeToken(token);
  if (start > total) {
    throw new InvalidArgumentError(
      "message_page_token",
      `points past the session's ${total} messages (was it summarized since?); start again with an empty token`,
    );
  }
  return { start, size };
}

/** The opaque token of the page starting at message `start`. */
export function messagePageToken(start: number): string {
  return Buffer.from(JSON.stringify({ m: start })).toString("base64url");
}

function decodeToken(token: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const m = typeof parsed === "object" && parsed !== null ? (parsed as { m?: unknown }).m : undefined;
  if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 1 || messagePageToken(m) !== token) {
    throw new InvalidArgumentError("message_page_token", "is not a token GetSession returned (next_message_page_token)");
  }
  return m;
}
