import { status, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { CallScope, type CallEnvironment } from "./call.js";
import type { UnaryHandler } from "./context.js";
import { parsedRequest } from "./malformed.js";

export function adaptUnary<Req, Res>(method: string, handler: UnaryHandler<Req, Res>, env: CallEnvironment) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const scope = new CallScope(call, method, env);
    scope.run(async () => {
      try {
        scope.authorize();
        const res = await handler(parsedRequest(call.request), scope.ctx);
        callback(null, res);
        scope.finish(status.OK);
      } catch (err) {
        const s = scope.errorStatus(err);
        callback({ code: s.code, details: s.details });
        scope.finish(s.code, s.details);
      }
    });
  };
}
