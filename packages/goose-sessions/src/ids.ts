import { randomUUID } from "node:crypto";
import { InvalidArgumentError, isValidRequestId } from "@skein/runtime";

/**
 * Session ids name files, so they are checked before any path is built. UUIDs
 * (skein) and goose CLI names such as 20250728_101010 or "my-session" pass;
 * separators, NUL, dot-files and "..", which could leave the directory, do not.
 */
const SESSION_ID_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

export function isValidSessionId(id: string): boolean {
  return SESSION_ID_RE.test(id);
}

export function validateSessionId(id: string, field = "session_id"): string {
  if (id === "") throw new InvalidArgumentError(field, "must not be empty");
  if (!isValidSessionId(id)) {
    throw new InvalidArgumentError(field, "must be 1..200 characters of letters, digits, '.', '_' or '-', not starting with '.' or '-'");
  }
  return id;
}

export function newSessionId(): string {
  return randomUUID();
}

/** The same rule the runtime applies to x-request-id: run ids appear in logs and metadata too. */
export function validateRequestId(id: string, field = "request_id"): string {
  if (!isValidRequestId(id)) throw new InvalidArgumentError(field, "must be 1..128 characters of letters, digits, '.', '_', ':' or '-'");
  return id;
}
