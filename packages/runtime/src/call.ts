import { randomUUID } from "node:crypto";
import { Metadata, status, type ServerWritableStream, type ServerUnaryCall, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { AbortFanout } from "./abort-fanout.js";
import { checkBearer, isPublicMethod, type ReflectionAuth } from "./auth.js";
import type { CallContext } from "./context.js";
import { statusOf, type SkeinError } from "./errors.js";

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

export interface CallHooks {
  /** Observes every finished call (metrics). */
  onCallEnd?(method: string, code: status, durationMs: number): void;
  /**
   * Where a stream counts the messages it writes: asked once per call, then
   * incremented per message (a plain field, so counting costs nothing per message).
   */
  messageCounter?(method: string): { count: number };
}

/** Settings shared by every call of one server. */
export interface CallEnvironment {
  readonly log: Logger;
  readonly authToken: string | undefined;
  /** Whether reflection needs the token too. */
  readonly reflectionAuth: ReflectionAuth;
  /** Aborted when graceful shutdown begins. */
  readonly draining: AbortSignal;
  /** Aborted when the grace period is over and remaining calls are ended (every call listens: see AbortFanout). */
  readonly forced: AbortFanout;
  /**
   * Aborted once the domain's shutdown is done (after `forced`): the end of
   * calls that finish on their own at shutdown (see selfEndingStream).
   */
  readonly stopped: AbortFanout;
  readonly hooks: CallHooks;
  /** Calls in flight, so shutdown can wait for them. */
  readonly inFlight: Set<Promise<unknown>>;
  /** The service's own naming of failures it knows (e.g. storage faults); see ServeOptions.classifyError. */
  readonly classifyError?: (err: unknown) => SkeinError | undefined;
}

function isReflection(method: string): boolean {
  return method.startsWith("/grpc.reflection.");
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's request id is echoed and logged: only safe, bounded ids are kept. */
export function isValidRequestId(id: string): boolean {
  return REQUEST_ID_RE.test(id);
}

/**
 * Everything a call does around its handler: request id in and out, a child
 * logger, an AbortSignal for cancel/deadline/forced shutdown, auth, and one
 * log line with the final status and duration.
 */
export class CallScope {
  readonly ctx: CallContext;
  private readonly started = process.hrtime.bigint();
  private readonly abort = new AbortController();
  private readonly detach: () => void;
  /** The client cancelled, hung up or let its deadline pass. */
  private clientEnded = false;
  /** Where sent messages are counted; looked up at the first one. */
  private sentCount: { count: number } | undefined;

  constructor(
    readonly call: AnyCall,
    readonly method: string,
    private readonly env: CallEnvironment,
    /** The call ends by itself when the domain stops: the end of the grace period does not cut it, only `stopped` does. */
    selfEnding = false,
  ) {
    const given = call.metadata.get("x-request-id")[0];
    const requestId = typeof given === "string" && isValidRequestId(given) ? given : randomUUID();
    // Built at first use (pino's child() costs more than the rest of the call's setup):
    // a call's start need not wait for it; the call's end log line always builds it.
    let log: Logger | undefined;
    const childLog = () => (log ??= env.log.child({ requestId, method }));
    const onCancel = () => {
      this.clientEnded = true;
      this.abort.abort(new Error("client cancelled or deadline exceeded"));
    };
    const onForced = () => this.abort.abort(new Error("server shutdown grace period over"));
    const events = call as unknown as NodeJS.EventEmitter;
    events.once("cancelled", onCancel);
    const stopListening = (selfEnding ? env.stopped : env.forced).on(onForced);
    this.detach = () => {
      events.removeListener("cancelled", onCancel);
      stopListening();
    };
    const md = new Metadata();
    md.set("x-request-id", requestId);
    call.sendMetadata(md);
    this.ctx = {
      requestId,
      method,
      get log() {
        return childLog();
      },
      signal: this.abort.signal,
      draining: env.draining,
      metadata: call.metadata,
      // Read only by the calls that log who asked (a getter: no cost for the others).
      get peer() {
        return call.getPeer();
      },
    };
  }

  /** Throws UNAUTHENTICATED when a token is configured and the call lacks it. */
  authorize(): void {
    if (this.env.authToken !== undefined && !isPublicMethod(this.method, this.env.reflectionAuth)) checkBearer(this.call.metadata, this.env.authToken);
  }

  /** Runs the call body, tracking it for shutdown, and always finishes the scope. */
  run(body: () => Promise<void>): void {
    const p = body().finally(() => this.detach());
    this.env.inFlight.add(p);
    void p.finally(() => this.env.inFlight.delete(p));
  }

  /** Counts a message written to the call's stream. */
  sent(): void {
    this.sentCount ??= this.env.hooks.messageCounter?.(this.method) ?? { count: 0 };
    this.sentCount.count++;
  }

  /** Maps a thrown value to a status, logging internals server-side only. */
  errorStatus(err: unknown): { code: status; details: string } {
    const known = err instanceof Error && !this.abort.signal.aborted ? this.env.classifyError?.(err) : undefined;
    const s = statusOf(known ?? err, this.ctx.requestId, this.abort.signal.aborted);
    if (s.internal) this.ctx.log.error({ err }, "unexpected error");
    return s;
  }

  finish(code: status, details?: string): void {
    const durationMs = Number(process.hrtime.bigint() - this.started) / 1e6;
    const duration = { durationMs: Math.round(durationMs * 10) / 10 };
    this.env.hooks.onCallEnd?.(this.method, code, durationMs);
    // Reflection is routine lookups (grpcurl opens several streams per command): debug unless it fails.
    const routine = isReflection(this.method) ? "debug" : "info";
    if (this.clientEnded && (code === status.CANCELLED || code === status.OK)) {
      // The client closed the call (grpcurl closes its reflection streams this
      // way once answered): no status reached it, so none is logged.
      this.ctx.log[routine]({ ...duration, endedBy: "client" }, "call closed by client");
      return;
    }
    const level = code === status.OK || code === status.CANCELLED ? routine : code === status.INTERNAL || code === status.UNKNOWN ? "error" : "warn";
    this.ctx.log[level]({ code: status[code], ...duration, ...(details ? { details } : {}) }, "call finished");
  }
}
