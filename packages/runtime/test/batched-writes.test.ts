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
        cb();
      });
    },
  });
  return { stream, taken, refused, mostInFlight: () => mostInFlight };
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
    await new Promise<void>((resolve) => t.stream.once("drain", resolve));
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

  async function streamOf(messages: Msg[], maxSendBytes = 1024): Promise<{ got: string[]; status: grpc.StatusObject | grpc.ServiceError }> {
    const plain = (v: Msg) => {
      if ("bad" in v) throw new Error("does not encode");
      return Buffer.from(String(v.n).repeat(v.n >= 100 ? 50 : 1));
    };
    const method = {
      path: "/test.Batched/Stream",
      requestStream: false,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: refusalAwareSerializer(plain, maxSendBytes),
      responseDeserialize: (b: Buffer) => b.toString(),
    } as const;
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
});
