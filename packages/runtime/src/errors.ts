import { status } from "@grpc/grpc-js";

/**
 * A failure the domain expects and the caller can act on. Each subclass maps to
 * exactly one gRPC status code; the message is sent to the client as is, so it
 * must say what was wrong without leaking internals.
 */
export class SkeinError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A request field broke a rule: "<field>: <rule>". */
export class InvalidArgumentError extends SkeinError {
  constructor(
    readonly field: string,
    rule: string,
  ) {
    super(status.INVALID_ARGUMENT, `${field}: ${rule}`);
  }
}

export class NotFoundError extends SkeinError {
  constructor(message: string) {
    super(status.NOT_FOUND, message);
  }
}

export class AlreadyExistsError extends SkeinError {
  constructor(message: string) {
    super(status.ALREADY_EXISTS, message);
  }
}

export class FailedPreconditionError extends SkeinError {
  constructor(message: string) {
    super(status.FAILED_PRECONDITION, message);
  }
}

export class ResourceExhaustedError extends SkeinError {
  constructor(message: string) {
    super(status.RESOURCE_EXHAUSTED, message);
  }
}

export class OutOfRangeError extends SkeinError {
  constructor(message: string) {
    super(status.OUT_OF_RANGE, message);
  }
}

export class UnauthenticatedError extends SkeinError {
  constructor(message: string) {
    super(status.UNAUTHENTICATED, message);
  }
}

/** The work was stopped on purpose (the client gave up, CancelReply, shutdown). */
export class CancelledError extends SkeinError {
  constructor(message: string) {
    super(status.CANCELLED, message);
  }
}

/**
 * The gRPC status a thrown value becomes, and the message the client sees.
 * With `aborted` (the call's own signal fired), whatever the aborted work threw
 * is a cancellation, not an internal error.
 */
export function statusOf(err: unknown, requestId: string, aborted = false): { code: status; details: string; internal: boolean } {
  if (err instanceof SkeinError) return { code: err.code, details: err.message, internal: false };
  if (aborted) return { code: status.CANCELLED, details: `the call was cancelled (request id ${requestId})`, internal: false };
  return { code: status.INTERNAL, details: `internal error (request id ${requestId})`, internal: true };
}
