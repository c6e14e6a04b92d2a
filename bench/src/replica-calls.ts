import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";

// The calls the session-pg benchmarks make on a replica, shared by its sections.

export type Client = pb.SessionServiceClient;
export type Ev = pb.ReplyResponse | pb.WatchSessionResponse;

export function events(stream: ClientReadableStream<Ev>, onEvent: (e: Ev) => void = () => undefined): Promise<ServiceError | undefined> {
  return new Promise((resolve) => {
    stream.on("data", onEvent);
    stream.on("end", () => resolve(undefined));
    stream.on("error", (err: ServiceError) => resolve(err));
  });
}
export const reply = (client: Client, sessionId: string, text: string) => client.reply(pb.ReplyRequest.fromPartial({ sessionId, text })) as ClientReadableStream<Ev>;
