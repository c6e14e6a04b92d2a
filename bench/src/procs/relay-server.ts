import { Agent, request } from "node:http";
import { Server, ServerCredentials, status, type ServerWritableStream } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { serveCommands } from "./commands.js";

/**
 * The minimal relay (issue 25's anchor) in its own process: Reply posts the
 * request's text to the provider (OpenAI chat completions, stream: true) with
 * node:http, splits the SSE stream into events, JSON-decodes each data line
 * and writes one gRPC message per text delta, with backpressure (the provider
 * response is paused while the call's buffer is full). No persistence, no
 * agent loop, no history: the least any server doing this job must spend.
 */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
let provider: URL | undefined;

interface Chunk {
  readonly choices?: ReadonlyArray<{ readonly delta?: { readonly content?: string | null } }>;
}

const server = new Server();
server.addService(pb.SessionServiceService, {
  reply: (call: ServerWritableStream<pb.ReplyRequest, pb.ReplyResponse>) => {
    const { sessionId, requestId, text } = call.request;
    let seq = 0;
    // grpc-js turns an 'error' event into the call's status.
    const fail = (why: string) => void call.emit("error", { code: status.UNAVAILABLE, details: why });
    const body = JSON.stringify({ model: "bench", stream: true, messages: [{ role: "user", content: text }] });
    const req = request(new URL("chat/completions", provider), { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return fail(`provider answered HTTP ${res.statusCode}`);
      }
      res.setEncoding("utf8");
      let pending = "";
      res.on("data", (piece: string) => {
        pending += piece;
        let end: number;
        while ((end = pending.indexOf("\n\n")) >= 0) {
          const frame = pending.slice(0, end);
          pending = pending.slice(end + 2);
          for (const line of frame.split("\n")) {
            if (!line.startsWith("data:")) continue;
            const data = line.slice(5).trimStart();
            if (data === "[DONE]") continue;
            const content = (JSON.parse(data) as Chunk).choices?.[0]?.delta?.content;
            if (!content) continue;
            const ok = call.write(pb.ReplyResponse.fromPartial({ seq: ++seq, requestId, sessionId, event: { $case: "textDelta", value: { text: content } } }));
            if (!ok) {
              // Backpressure: no more reads until the call drains (or is cancelled: then drain never fires).
              res.pause();
              const resume = () => {
                call.off("drain", resume);
                call.off("cancelled", resume);
                res.resume();
              };
              call.on("drain", resume);
              call.on("cancelled", resume);
            }
          }
        }
      });
      res.on("end", () => call.end());
      res.on("error", (err) => fail(err.message));
    });
    req.on("error", (err) => fail(err.message));
    call.on("cancelled", () => req.destroy());
    req.end(body);
  },
} as never);

const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));

serveCommands({
  /** The provider's base URL (ends in /v1). */
  provider: ({ baseURL }: { baseURL: string }) => void (provider = new URL(`${baseURL.replace(/\/$/, "")}/`)),
  address: () => `127.0.0.1:${port}`,
});
