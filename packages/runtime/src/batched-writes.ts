import type { Writable } from "node:stream";

interface WritevChunk {
  chunk: unknown;
  encoding: BufferEncoding;
}

/** Responses grpc-js refused (their serializer threw, or they exceed the send limit). */
const unsendable = new WeakSet<object>();

/**
 * Wraps a method's response serializer so that a response grpc-js will refuse
 * is known as such: grpc-js answers it by ending the call with a status and
 * never calls that write back, so a batch must not hand anything after it.
 */
export function refusalAwareSerializer<T>(serialize: (value: T) => Buffer, maxSendBytes: number): (value: T) => Buffer {
  return (value) => {
    let bytes: Buffer;
    try {
      bytes = serialize(value);
    } catch (err) {
      if (typeof value === "object" && value !== null) unsendable.add(value);
      throw err;
    }
    if (bytes.length > maxSendBytes && typeof value === "object" && value !== null) unsendable.add(value);
    return bytes;
  };
}

/**
 * Lets a grpc-js response stream hand what piled up while it was writing to
 * the transport all at once, instead of one message per HTTP/2 write.
 *
 * grpc-js's response streams are object-mode Writables with only `_write`
 * (one message to the call's `sendMessage`, which calls back once HTTP/2 has
 * taken the frame). Without `_writev`, Node's Writable passes buffered
 * messages down one at a time, each after the previous one's callback: every
 * message is its own native write and its own round of callbacks. With this
 * `_writev`, the buffered messages go to `_write` back to back; HTTP/2 takes
 * the first and queues the rest into one write of its own.
 *
 * Order is kept (`_write` serializes and queues synchronously, in call
 * order), and so is backpressure: the Writable calls back, and so accepts
 * more, only once every message of the batch was taken. A refused message
 * (see refusalAwareSerializer) ends the batch there, as it ended the stream's
 * writes before: grpc-js sends the call's status and nothing after it.
 */
export function writeInBatches(stream: Writable): void {
  if (stream.writableObjectMode !== true) return;
  const target = stream as Writable & { _writev?: (chunks: WritevChunk[], callback: (err?: Error | null) => void) => void };
  target._writev = function writeBatch(this: Writable, chunks, callback) {
    let left = chunks.length;
    let failed = false;
    const one = (err?: Error | null) => {
      if (failed) return;
      if (err) {
        failed = true;
        callback(err);
      } else if (--left === 0) callback();
    };
    for (const { chunk, encoding } of chunks) {
      this._write(chunk, encoding, one);
      if (failed || (typeof chunk === "object" && chunk !== null && unsendable.has(chunk))) break;
    }
  };
}
