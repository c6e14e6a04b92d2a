import type { Client, ClientReadableStream } from "@grpc/grpc-js";
import type { Endpoint } from "./clients.js";
import { CliError } from "./errors.js";

/** Calls `handler` on each SIGINT until the returned function is called. */
export function onInterrupt(handler: () => void): () => void {
  process.on("SIGINT", handler);
  return () => void process.off("SIGINT", handler);
}

/**
 * Reads a follow-forever stream until Ctrl-C (resolves 0). The service ending
 * it (e.g. on shutdown) is an error, so scripts know to reconnect.
 */
export async function follow<T>(ep: Endpoint<Client>, stream: ClientReadableStream<T>, onItem: (item: T) => void): Promise<number> {
  let stopped = false;
  const off = onInterrupt(() => {
    stopped = true;
    stream.cancel();
  });
  try {
    for await (const item of stream as AsyncIterable<T>) onItem(item);
  } catch (err) {
    if (stopped) return 0;
    throw ep.error(err);
  } finally {
    off();
  }
  if (stopped) return 0;
  throw new CliError(`the ${ep.target.service} service ended the watch (it may be shutting down)`);
}
