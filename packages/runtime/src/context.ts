import type { Metadata } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { BatchSource } from "./batch-source.js";

/** What every handler receives beside its request. */
export interface CallContext {
  /** From the caller's `x-request-id`, else generated; echoed in response metadata. */
  readonly requestId: string;
  /** Full method path, e.g. /skein.session.v1.SessionService/Reply. */
  readonly method: string;
  /** Child logger carrying requestId and method. */
  readonly log: Logger;
  /** Aborted when the client cancels, its deadline passes, or shutdown forces calls to end. */
  readonly signal: AbortSignal;
  /**
   * Aborted when graceful shutdown begins. Streams that would otherwise follow
   * forever (watchers) end on it; finite work may go on until `signal` aborts.
   */
  readonly draining: AbortSignal;
  readonly metadata: Metadata;
  /** The client's address as grpc-js reports it (e.g. ipv4:127.0.0.1:53211). */
  readonly peer: string;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
/**
 * What a server-streaming handler gives: its messages as an async iterable,
 * or as a batch source (written a batch at a time), or a promise of either
 * (a handler that must do work before it can stream, and may fail with a status).
 */
export type StreamSource<Res> = AsyncIterable<Res> | BatchSource<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, ctx: CallContext) => StreamSource<Res> | Promise<StreamSource<Res>>;
export type BidiStreamHandler<Req, Res> = (requests: AsyncIterable<Req>, ctx: CallContext) => AsyncIterable<Res>;
