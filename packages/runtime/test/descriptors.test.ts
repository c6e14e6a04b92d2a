import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { descriptorSetPath } from "@skein/proto";
import { expect, it } from "vitest";
import { DescriptorIndex } from "../src/descriptors.js";

const index = DescriptorIndex.fromFile(descriptorSetPath);
const names = (files: Uint8Array[] | undefined) => (files ?? []).map((b) => fromBinary(FileDescriptorProtoSchema, b).name);

it("answers a symbol with its file first, then every file it depends on", () => {
  const files = names(index.fileContainingSymbol("skein.session.v1.SessionService"));
  expect(files[0]).toBe("skein/session/v1/session.proto");
  expect(files).toContain("google/protobuf/timestamp.proto");
  expect(files).toContain("google/protobuf/struct.proto");
});

it("indexes methods, nested messages and enum values", () => {
  expect(index.hasSymbol("skein.fleet.v1.FleetService.StartAgent")).toBe(true);
  expect(index.hasSymbol("grpc.health.v1.HealthCheckResponse.ServingStatus")).toBe(true);
  expect(index.hasSymbol("skein.session.v1.FINISH_REASON_STOP")).toBe(true);
  expect(index.fileContainingSymbol("nope.Nope")).toBeUndefined();
});
