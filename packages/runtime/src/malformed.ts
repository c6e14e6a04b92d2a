import { InvalidArgumentError } from "./errors.js";

/**
 * A request whose bytes did not parse. grpc-js would answer INTERNAL
 * "Error deserializing request" before the handler (and so before the auth
 * check) runs; deserializing to this marker instead lets the call check
 * credentials first and then answer INVALID_ARGUMENT.
 */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

export function tolerantDeserializer<T>(deserialize: (bytes: Buffer) => T): (bytes: Buffer) => T | MalformedRequest {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      return new MalformedRequest(err instanceof Error ? err.message : String(err));
    }
  };
}

/** Throws INVALID_ARGUMENT for a request that did not parse; returns it typed otherwise. */
export function parsedRequest<T>(request: T | MalformedRequest): T {
  if (request instanceof MalformedRequest) throw new InvalidArgumentError("request", `the bytes are not a valid protobuf message of the method's request type (${request.reason})`);
  return request;
}

/** A request stream whose malformed messages end the call with INVALID_ARGUMENT. */
export async function* parsedRequests<T>(requests: AsyncIterable<T | MalformedRequest>): AsyncGenerator<T> {
  for await (const r of requests) yield parsedRequest(r);
}
