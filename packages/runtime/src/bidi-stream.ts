import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { CallEnvironment } from "./call.js";
import type { BidiStreamHandler } from "./context.js";
import { parsedRequests } from "./malformed.js";
import { streamResponses } from "./server-stream.js";

/** Bidirectional calls: the handler reads the requests and yields responses. */
export function adaptBidiStream<Req, Res>(method: string, handler: BidiStreamHandler<Req, Res>, env: CallEnvironment) {
  return (call: ServerDuplexStream<Req, Res>): void => streamResponses(call, method, env, (ctx) => handler(parsedRequests(call as AsyncIterable<Req>), ctx));
}
