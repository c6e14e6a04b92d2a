import { status, type ServerDuplexStream, type ServerWritableStream } from "@grpc/grpc-js";
import { untilAborted } from "./abort.js";
import { batchesOf, isBatchSource } from "./batch-source.js";
import { writeInBatches } from "./batched-writes.js";
import { CallScope, type CallEnvironment } from "./call.js";
import type { CallContext, ServerStreamHandler, StreamSource } from "./context.js";
import { parsedRequest } from "./malformed.js";
import { pumpBatches } from "./stream-writer.js";

type ResponseStream = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>;

const SELF_ENDING = Symbol("skein.selfEndingStream");

/**
 * Marks a server-streaming handler whose stream ends by itself when the
 * service's domain stops at shutdown (a reply stream ends with its run's last
 * event once the run is stopped). The end of the grace period does not cut
 * such a stream, so its last messages reach the client; it is cut only if it
 * is still open once the domain's shutdown is done.
 */
export function selfEndingStream<Req, Res>(handler: ServerStreamHandler<Req, Res>): ServerStreamHandler<Req, Res> {
  return Object.assign((req: Req, ctx: CallContext) => handler(req, ctx), { [SELF_ENDING]: true });
}

/**
 * Server-streaming calls: the handler yields messages (or hands out batches of
 * them); they are written with backpressure; cancel, deadline or forced shutdown stop the handler's
 * iterator (its finally blocks run) and leave no listener behind.
 */
export function adaptServerStream<Req, Res>(method: string, handler: ServerStreamHandler<Req, Res>, env: CallEnvironment) {
  const selfEnding = SELF_ENDING in handler;
  return (call: ServerWritableStream<Req, Res>): void => streamResponses(call, method, env, (ctx) => handler(parsedRequest(call.request), ctx), selfEnding);
}

/** Writes what `produce` yields to the call's response stream, then its final status. */
export function streamResponses(
  call: ResponseStream,
  method: string,
  env: CallEnvironment,
  produce: (ctx: CallContext) => StreamSource<unknown> | Promise<StreamSource<unknown>>,
  selfEnding = false,
): void {
  const scope = new CallScope(call, method, env, selfEnding);
  writeInBatches(call);
  scope.run(async () => {
    try {
      scope.authorize();
      const completed = await write(produce(scope.ctx), call, scope.ctx.signal, () => scope.sent());
      if (completed) {
        call.end();
        scope.finish(status.OK);
      } else {
        endWithStatus(call, status.CANCELLED, "stream stopped: client gone or server shutting down");
        scope.finish(status.CANCELLED);
      }
    } catch (err) {
      const s = scope.errorStatus(err);
      endWithStatus(call, s.code, s.details);
      scope.finish(s.code, s.details);
    }
  });
}

/** Waits for the handler's source (unless the call stops first: then the source is closed once it comes) and pumps it. */
async function write(produced: StreamSource<unknown> | Promise<StreamSource<unknown>>, call: ResponseStream, signal: AbortSignal, onWrite: () => void): Promise<boolean> {
  const asBatches = (s: StreamSource<unknown>) => (isBatchSource(s) ? s : batchesOf(s));
  let source = produced;
  if (source instanceof Promise) {
    const pending = source;
    const ready = await untilAborted(pending, signal);
    if (ready === undefined) {
      pending.then((s) => asBatches(s).close(), () => undefined);
      return false;
    }
    source = ready;
  }
  return pumpBatches(asBatches(source), call, signal, onWrite);
}

function endWithStatus(call: ResponseStream, code: status, details: string): void {
  // grpc-js turns an 'error' event on a response stream into the call's status.
  if (!call.writableEnded && !call.destroyed) call.emit("error", { code, details });
}
