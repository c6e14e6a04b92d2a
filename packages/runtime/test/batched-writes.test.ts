import { once } from "node:events";
import http2 from "node:http2";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { refusalAwareSerializer, writeInBatches } from "../src/batched-writes.js";

/**
 * An object stream shaped like grpc-js's response streams: `_write` only; it
 * serializes, and a message the serializer refuses is never called back (the
 * call ends with a status instead); others are taken one loop turn later.
 */
function transportLike(opts: { refuse?: number; highWaterMark?: number } = {}) {
  const taken: number[] = [];
  const refused: number[] = [];
  const done = { count: 0 };
  let inFlight = 0;
  let mostInFlight = 0;
  const serialize = refusalAwareSerializer((v: { n: number }) => {
    if (v.n === opts.refuse) throw new Error(`message ${v.n} does not encode`);
    return Buffer.from(String(v.n));
  }, 1024);
  const stream = new Writable({
    objectMode: true,
    highWaterMark: opts.highWaterMark ?? 16,
    write(chunk: { n: number }, _enc, cb) {
      try {
        serialize(chunk);
      } catch {
        refused.push(chunk.n);
        return;
      }
      taken.push(chunk.n);
      inFlight++;
      mostInFlight = Math.max(mostInFlight, inFlight);
      setImmediate(() => {
        inFlight--;
        done.count++;
        cb();
      });
    },
  });
  return { stream, taken, refused, done, mostInFlight: () => mostInFlight };
}

const finished = (s: Writable) => new Promise<void>((resolve, reject) => s.end(() => resolve()).once("error", reject));
const turn = () => new Promise((r) => setImmediate(r));

describe("writeInBatches", () => {
  it("without it, a Writable hands its transport one message at a time", async () => {
    const t = transportLike();
    for (let n = 1; n <= 6; n++) t.stream.write({ n });
    await finished(t.stream);
    expect(t.taken).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.mostInFlight()).toBe(1);
  });

  it("hands what piled up during a write to the transport at once, in order", async () => {
    const t = transportLike();
    writeInBatches(t.stream);
    for (let n = 1; n <= 6; n++) t.stream.write({ n });
    await finished(t.stream);
    expect(t.taken).toEqual([1, 2, 3, 4, 5, 6]);
    // The first went alone; the five written meanwhile went together.
    expect(t.mostInFlight()).toBe(5);
  });

  it("keeps backpressure: drain comes only once the whole batch was taken", async () => {
    const t = transportLike({ highWaterMark: 3 });
    writeInBatches(t.stream);
    const accepted = [1, 2, 3, 4].map((n) => t.stream.write({ n }));
    expect(accepted).toEqual([true, true, false, false]);
    const doneAtDrain = await new Promise<number>((resolve) => t.stream.once("drain", () => resolve(t.done.count)));
    expect(doneAtDrain).toBe(4);
    expect(t.taken).toEqual([1, 2, 3, 4]);
    expect(t.stream.writableLength).toBe(0);
    await finished(t.stream);
  });

  it("stops a batch at a refused message: nothing after it reaches the transport", async () => {
    const t = transportLike({ refuse: 3 });
    writeInBatches(t.stream);
    for (let n = 1; n <= 5; n++) t.stream.write({ n });
    for (let i = 0; i < 5; i++) await turn();
    expect(t.taken).toEqual([1, 2]);
    expect(t.refused).toEqual([3]);
  });

  it("passes a transport error on once, whatever else the batch does", async () => {
    let calls = 0;
    const stream = new Writable({ objectMode: true, write: (_c, _e, cb) => setImmediate(() => cb(new Error(`write ${++calls} failed`))) });
    writeInBatches(stream);
    const errors: string[] = [];
    stream.on("error", (e) => errors.push(e.message));
    for (let n = 1; n <= 4; n++) stream.write({ n });
    for (let i = 0; i < 5; i++) await turn();
    expect(errors).toEqual(["write 1 failed"]);
  });

  it("leaves byte streams alone", () => {
    const bytes = new Writable({ write: (_c, _e, cb) => cb() });
    writeInBatches(bytes);
    expect(Object.prototype.hasOwnProperty.call(bytes, "_writev")).toBe(false);
  });
});

describe("writeInBatches on a real grpc-js server stream", () => {
  type Msg = { n: number } | { bad: true };
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  /** A server-streaming method of raw buffers in, `serialize`d values out. */
  const streamMethod = <T, Out>(path: string, serialize: (v: T) => Buffer, deserialize: (b: Buffer) => Out) =>
    ({
      path,
      requestStream: false,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: serialize,
      responseDeserialize: deserialize,
    }) as const;

  async function streamOf(messages: Msg[], maxSendBytes = 1024): Promise<{ got: string[]; status: grpc.StatusObject | grpc.ServiceError }> {
    const plain = (v: Msg) => {
      if ("bad" in v) throw new Error("does not encode");
      return Buffer.from(String(v.n).repeat(v.n >= 100 ? 50 : 1));
    };
    const method = streamMethod("/test.Batched/Stream", refusalAwareSerializer(plain, maxSendBytes), (b) => b.toString());
    const server = new grpc.Server({ "grpc.max_send_message_length": maxSendBytes });
    server.addService({ Stream: method }, {
      Stream: (call: grpc.ServerWritableStream<Buffer, Msg>) => {
        call.sendMetadata(new grpc.Metadata());
        writeInBatches(call);
        for (const m of messages) call.write(m);
        call.end();
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const Client = grpc.makeGenericClientConstructor({ Stream: method }, "Batched");
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    stop = () => {
      client.close();
      server.forceShutdown();
    };
    const got: string[] = [];
    const call = (client as unknown as { Stream(req: Buffer): grpc.ClientReadableStream<string> }).Stream(Buffer.from("go"));
    call.on("data", (d: string) => got.push(d));
    const status = await new Promise<grpc.StatusObject | grpc.ServiceError>((resolve) => {
      call.on("error", resolve);
      call.on("status", (s: grpc.StatusObject) => s.code === grpc.status.OK && resolve(s));
    });
    return { got, status };
  }

  it("delivers every message in order", async () => {
    const messages = Array.from({ length: 200 }, (_, i) => ({ n: i % 10 }));
    const { got, status } = await streamOf(messages);
    expect(status.code).toBe(grpc.status.OK);
    expect(got).toEqual(messages.map((m) => String(m.n)));
  });

  it("a message that does not encode ends the call with INTERNAL after the ones before it (no hang)", async () => {
    const { got, status } = await streamOf([{ n: 0 }, { n: 1 }, { n: 2 }, { bad: true }, { n: 4 }, { n: 5 }]);
    expect(got).toEqual(["0", "1", "2"]);
    expect(status.code).toBe(grpc.status.INTERNAL);
    expect(status.details).toBe("Error serializing response");
  });

  it("a message over the send limit ends the call with RESOURCE_EXHAUSTED after the ones before it", async () => {
    const { got, status } = await streamOf([{ n: 0 }, { n: 1 }, { n: 123 }, { n: 4 }], 64);
    expect(got).toEqual(["0", "1"]);
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it("holds back while the client does not read (HTTP/2 flow control reaches the writer), then delivers everything in order", async () => {
    const total = 4000;
    const body = "x".repeat(1024);
    const method = streamMethod("/test.Batched/Big", refusalAwareSerializer((v: { n: number }) => Buffer.from(`${v.n} ${body}`), 1 << 20), (b) => b);
    const server = new grpc.Server();
    const progress = { written: 0, waiting: false, mostBuffered: 0, done: false };
    server.addService({ Big: method }, {
      Big: async (call: grpc.ServerWritableStream<Buffer, { n: number }>) => {
        writeInBatches(call);
        for (let n = 0; n < total; n++) {
          const more = call.write({ n });
          progress.written++;
          progress.mostBuffered = Math.max(progress.mostBuffered, call.writableLength);
          if (!more) {
            progress.waiting = true;
            await once(call, "drain");
            progress.waiting = false;
          }
        }
        call.end();
        progress.done = true;
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    // A plain HTTP/2 client: grpc-js's own client keeps reading into memory while paused; this one stops.
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => undefined);
    stop = () => {
      session.destroy();
      server.forceShutdown();
    };
    const stream = session.request({ ":method": "POST", ":path": method.path, "content-type": "application/grpc", te: "trailers" });
    stream.on("error", () => undefined);
    stream.pause();
    stream.end(Buffer.from([0, 0, 0, 0, 2, 0x67, 0x6f]));
    // The writer stalls for good while nobody reads: wait until it has sat waiting for drain, unmoved, for a while.
    let still = 0;
    let last = -1;
    while (still < 20 && !progress.done) {
      await new Promise((r) => setTimeout(r, 10));
      still = progress.waiting && progress.written === last ? still + 1 : 0;
      last = progress.written;
    }
    expect(progress.done).toBe(false);
    expect(progress.written).toBeLessThan(total / 2);
    let bytes = Buffer.alloc(0);
    stream.on("data", (d: Buffer) => (bytes = Buffer.concat([bytes, d])));
    stream.resume();
    await once(stream, "end");
    const got: number[] = [];
    for (let at = 0; at < bytes.length; ) {
      const len = bytes.readUInt32BE(at + 1);
      got.push(Number(bytes.subarray(at + 5, at + 5 + len).toString().split(" ")[0]));
      at += 5 + len;
    }
    expect(got).toEqual(Array.from({ length: total }, (_, n) => n));
    // Never more than a Writable's worth (grpc-js: 16 messages) held in the process at once.
    expect(progress.mostBuffered).toBeLessThanOrEqual(16);
  });
});
