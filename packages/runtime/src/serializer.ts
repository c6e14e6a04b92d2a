import type { ServiceDefinition } from "@grpc/grpc-js";
import { BinaryWriter } from "@bufbuild/protobuf/wire";

/** What ts-proto generates for each message: `encode` into a given writer. */
export interface MessageEncoder<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

/**
 * A writer larger than this after a message is dropped, so one huge message
 * does not keep its buffer for the process's life.
 */
const KEEP_WRITER_BYTES = 64 * 1024;

/**
 * A response serializer that encodes every message into one reused writer.
 * The generated one (`Buffer.from(X.encode(v).finish())`) allocates a fresh
 * writer buffer, its `finish()` slice and a Buffer copy per message; this one
 * allocates only the slice and wraps it without copying. grpc-js copies the
 * result into its framed message at once, so the slice is never shared.
 */
export function reusedWriterSerializer<T>(encoder: MessageEncoder<T>): (value: T) => Buffer {
  let writer = new BinaryWriter();
  return (value) => {
    let bytes: Uint8Array;
    try {
      bytes = encoder.encode(value, writer).finish();
    } catch (err) {
      // A failed encode leaves the writer mid-message: start the next one clean.
      writer = new BinaryWriter();
      throw err;
    }
    if (bytes.byteLength > KEEP_WRITER_BYTES) writer = new BinaryWriter();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

type ResponseOf<M> = M extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

/**
 * The definition with the named methods' responses serialized through a
 * reused writer (see reusedWriterSerializer): for streams whose many small
 * messages make the per-message allocations show.
 */
export function withReusedWriters<D extends ServiceDefinition>(definition: D, encoders: { [K in keyof D]?: MessageEncoder<ResponseOf<D[K]>> }): D {
  const out: Record<string, ServiceDefinition[string]> = { ...definition };
  for (const [key, encoder] of Object.entries(encoders) as [string, MessageEncoder<unknown> | undefined][]) {
    const def = definition[key];
    if (!def) throw new Error(`withReusedWriters: the service has no method ${key}`);
    if (encoder) out[key] = { ...def, responseSerialize: reusedWriterSerializer(encoder) };
  }
  return out as D;
}
