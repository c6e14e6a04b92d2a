import { Server, ServerCredentials, type ServerWritableStream } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { serveCommands } from "./commands.js";

/**
 * A bare grpc-js server in its own process: Reply streams "count=N" text
 * deltas of one character, shaped like skein's (seq, request id, session id),
 * with backpressure, "delay=M" ms apart (default: as fast as it can), and
 * nothing else: the floor skein is compared with.
 */
const server = new Server();
server.addService(pb.SessionServiceService, {
  reply: async (call: ServerWritableStream<pb.ReplyRequest, pb.ReplyResponse>) => {
    const count = Number(/count=(\d+)/.exec(call.request.text)?.[1] ?? 0);
    const delayMs = Number(/delay=(\d+)/.exec(call.request.text)?.[1] ?? 0);
    const { sessionId, requestId } = call.request;
    for (let seq = 1; seq <= count && !call.cancelled; seq++) {
      if (delayMs > 0 && seq > 1) await new Promise((r) => setTimeout(r, delayMs));
      const ok = call.write(pb.ReplyResponse.fromPartial({ seq, requestId, sessionId, event: { $case: "textDelta", value: { text: "x" } } }));
      if (!ok) await drainOrCancel(call);
    }
    call.end();
  },
} as never);
/** After a cancel, drain never fires. */
function drainOrCancel(call: ServerWritableStream<pb.ReplyRequest, pb.ReplyResponse>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
  });
}

const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

serveCommands({ address: () => `127.0.0.1:${port}` });
