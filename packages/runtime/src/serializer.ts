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

/** How @bufbuild/protobuf 2.x's writer holds what was written: bytes in `buffer[0, pos)`, open forks in `stackPos`. */
interface WriterState {
  buffer: Uint8Array;
  pos: number;
  stackPos: number[];
}

/** The writer's state when it has that shape (checked per use, so a library upgrade that changes it only loses the fast path). */
export function stateOf(writer: BinaryWriter): WriterState | undefined {
  const w = writer as unknown as Partial<WriterState>;
  return w.buffer instanceof Uint8Array && typeof w.pos === "number" && Array.isArray(w.stackPos) && w.stackPos.length === 0 ? (w as WriterState) : undefined;
}

/**
 * A response serializer that encodes every message into one reused writer and
 * copies the bytes into a Buffer from Node's pool. The generated one
 * (`Buffer.from(X.encode(v).finish())`) allocates a fresh writer buffer, the
 * `finish()` slice (a new ArrayBuffer: the costliest part) and a Buffer copy
 * per message: ~3× the CPU of this for a text delta.
 */
export function reusedWriterSerializer<T>(encoder: MessageEncoder<T>): (value: T) => Buffer {
  let writer = new BinaryWriter();
  return (value) => {
    try {
      encoder.encode(value, writer);
    } catch (err) {
      // A failed encode leaves the writer mid-message: start the next one clean.
      writer = new BinaryWriter();
      throw err;
    }
    const state = stateOf(writer);
    let out: Buffer;
    if (state) {
      out = Buffer.allocUnsafe(state.pos);
      out.set(state.buffer.subarray(0, state.pos));
      state.pos = 0;
    } else {
      const bytes = writer.finish();
      out = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    if (out.byteLength > KEEP_WRITER_BYTES) writer = new BinaryWriter();
    return out;
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
