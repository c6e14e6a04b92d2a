import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import { CallScope, type CallEnvironment } from "./call.js";
import type { BidiStreamHandler } from "./context.js";
import { pump } from "./stream-writer.js";

export function adaptBidiStream<Req, Res>(method: string, handler: BidiStreamHandler<Req, Res>, env: CallEnvironment) {
  return (call: ServerDuplexStream<Req, Res>): void => {
    const scope = new CallScope(call, method, env);
    scope.run(async () => {
      try {
        scope.authorize();
        const completed = await pump(handler(call as AsyncIterable<Req>, scope.ctx), call, scope.ctx.signal, () => scope.sent());
        if (completed) call.end();
        else if (!call.writableEnded && !call.destroyed) call.emit("error", { code: status.CANCELLED, details: "stream stopped" });
        scope.finish(completed ? status.OK : status.CANCELLED);
      } catch (err) {
        const s = scope.errorStatus(err);
        if (!call.writableEnded && !call.destroyed) call.emit("error", { code: s.code, details: s.details });
        scope.finish(s.code, s.details);
      }
    });
  };
}
