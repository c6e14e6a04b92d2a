import { makeGenericClientConstructor, Metadata, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { closeClients, connect, md, startService, type ServiceProcess } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";

const TOKEN = "s3cret-token-for-tests";
/** Field 1, length-delimited, says 5 bytes follow but only 1 does: no protobuf decoder accepts it. */
const GARBAGE = Buffer.from([0x0a, 0x05, 0x01]);

let svc: ServiceProcess | undefined;
afterEach(async () => {
  closeClients();
  await svc?.stop();
  svc = undefined;
});

const raw = (b: Buffer) => b;
/** A client that sends bytes as they are, as a fuzzer or a broken client would. */
const RawClient = makeGenericClientConstructor(
  {
    unary: { path: "/skein.session.v1.SessionService/GetSession", requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    serverStream: { path: "/skein.session.v1.SessionService/WatchSession", requestStream: false, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
    bidi: { path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", requestStream: true, responseStream: true, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
  },
  "Raw",
);
type Raw = Client & Record<string, (...args: unknown[]) => unknown>;

function unary(c: Raw, metadata = new Metadata()): Promise<ServiceError> {
  return new Promise((resolve, reject) => c.unary(GARBAGE, metadata, (err: ServiceError | null) => (err ? resolve(err) : reject(new Error("accepted garbage")))));
}
function streamStatus(stream: NodeJS.EventEmitter): Promise<ServiceError> {
  return new Promise((resolve, reject) => {
    stream.on("data", () => reject(new Error("answered garbage")));
    stream.on("error", resolve);
    stream.on("end", () => reject(new Error("ended without an error")));
  });
}

it("a request whose bytes do not parse gets INVALID_ARGUMENT naming the request, on every call kind", async () => {
  svc = await startService("session");
  const c = connect(RawClient as never, svc.address) as Raw;
  const u = await unary(c);
  expect(u.code).toBe(status.INVALID_ARGUMENT);
  expect(u.details).toMatch(/^request: the bytes are not a valid protobuf message/);
  const s = await streamStatus(c.serverStream(GARBAGE) as NodeJS.EventEmitter);
  expect(s.code).toBe(status.INVALID_ARGUMENT);
  const bidi = c.bidi() as NodeJS.WritableStream & NodeJS.EventEmitter;
  const b = streamStatus(bidi);
  bidi.write(GARBAGE);
  expect((await b).code).toBe(status.INVALID_ARGUMENT);
  // The service carries on.
  expect(svc.proc.exitCode).toBeNull();
});

it("with a token configured, a caller without it gets UNAUTHENTICATED before its bytes are judged", async () => {
  svc = await startService("session", { SKEIN_AUTH_TOKEN: TOKEN, SKEIN_REFLECTION_AUTH: "token" });
  const c = connect(RawClient as never, svc.address) as Raw;
  expect((await unary(c)).code).toBe(status.UNAUTHENTICATED);
  expect((await streamStatus(c.serverStream(GARBAGE) as NodeJS.EventEmitter)).code).toBe(status.UNAUTHENTICATED);
  const bidi = c.bidi() as NodeJS.WritableStream & NodeJS.EventEmitter;
  const b = streamStatus(bidi);
  bidi.write(GARBAGE);
  expect((await b).code).toBe(status.UNAUTHENTICATED);
  // With the token, the same bytes are INVALID_ARGUMENT.
  expect((await unary(c, md({ token: TOKEN }))).code).toBe(status.INVALID_ARGUMENT);
});
