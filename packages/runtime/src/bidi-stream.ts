import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { CallEnvironment } from "./call.js";
import type { BidiStreamHandler } from "./context.js";
import { parsedRequests } from "./malformed.js";
import { streamResponses } from "./server-stream.js";

/** Bidirectional calls: the handler reads the requests and yields responses. */
export function adaptBidiStream<Req, Res>(method: string, handler: BidiStreamHandler<Req, Res>, env: CallEnvironment) {
  return (call: ServerDuplexStream<Req, Res>): void => streamResponses(call, method, env, (ctx) => handler(parsedRequests(requestsOf(call)), ctx));
}

/**
 * The call's requests. A handler that stops reading early (or a request that
 * does not parse) must not destroy the call, which the default iterator does:
 * a destroyed call can no longer send the status that explains why.
 */
function requestsOf<Req, Res>(call: ServerDuplexStream<Req, Res>): AsyncIterable<Req> {
  return { [Symbol.asyncIterator]: () => call.iterator({ destroyOnReturn: false }) as AsyncIterator<Req> };
}
