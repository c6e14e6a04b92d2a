import { InvalidArgumentError } from "@skein/runtime";

/**
 * ListSessions page tokens, shared by every store: the last row's position as
 * base64url JSON. Each store says what a valid position looks like; anything
 * else is INVALID_ARGUMENT, never a query with a garbage cursor.
 */
export function encodePageToken(position: object): string {
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

export function decodePageToken<T>(token: string, valid: (v: Record<string, unknown>) => boolean): T {
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (typeof v === "object" && v !== null && valid(v as Record<string, unknown>)) return v as T;
  } catch {
    // falls through to the error below
  }
  throw new InvalidArgumentError("page_token", "is not a token this service issued");
}
