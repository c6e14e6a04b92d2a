import { credentials, loadPackageDefinition, type Client, type GrpcObject, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoRoot } from "@skein/proto";

const FILES = ["skein/session/v1/session.proto", "skein/fleet/v1/fleet.proto", "grpc/health/v1/health.proto"];

let loaded: GrpcObject | undefined;

/**
 * A client built at run time from the .proto sources with proto-loader, the
 * way a generic tool sees the contract: enums as names, 64-bit integers as
 * strings, defaults filled in. It checks the wire contract independently of
 * the generated code.
 */
export function dynamicClient(service: string, address: string): Client & Record<string, (...args: unknown[]) => unknown> {
  loaded ??= loadPackageDefinition(
    loadSync(FILES, { includeDirs: [protoRoot], keepCase: false, longs: String, enums: String, defaults: true, oneofs: true }),
  );
  const Ctor = service.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], loaded) as ServiceClientConstructor;
  if (typeof Ctor !== "function") throw new Error(`${service} is not in the contract`);
  return new Ctor(address, credentials.createInsecure()) as unknown as Client & Record<string, (...args: unknown[]) => unknown>;
}
