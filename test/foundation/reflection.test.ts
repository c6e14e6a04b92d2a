import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { descriptorSetPath } from "@skein/proto";
import { expect, it } from "vitest";
import { forEachService } from "./each-service.js";
import { describeServer, openReflection } from "./reflection-client.js";

const BUILTIN = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
const contract = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSetPath)));

/** A service's methods as the descriptor set built from proto/ defines them. */
function contractMethods(service: string): string[] | undefined {
  return contract.getService(service)?.methods.map((m) => `${m.name}(${m.input.typeName}) ${m.output.typeName}`);
}

forEachService("reflection on the %s service", (current, name, serviceName) => {
  it.each(["v1", "v1alpha"] as const)("resolves every method's types from the server alone (%s)", async (version) => {
    const { services, registry } = await describeServer(current().address, version);
    expect(services.sort()).toEqual([serviceName, ...BUILTIN].sort());
    // createFileRegistry resolved every type (it throws on a missing one);
    // what the server describes must also be the whole contract, method by method.
    for (const s of services) {
      const described = registry.getService(s)?.methods.map((m) => `${m.name}(${m.input.typeName}) ${m.output.typeName}`);
      expect(described, s).toEqual(contractMethods(s));
    }
  });

  it("serves google.protobuf well-known types with their files", async () => {
    const { registry, files } = await describeServer(current().address, "v1");
    expect(files.has("google/protobuf/timestamp.proto")).toBe(true);
    const msg = registry.getMessage(name === "session" ? "skein.session.v1.Session" : "skein.fleet.v1.Agent");
    const ts = msg?.fields.find((f) => f.message?.typeName === "google.protobuf.Timestamp");
    expect(ts, "a Timestamp field resolves to the real google.protobuf.Timestamp").toBeDefined();
  });

  it("answers unknown symbols and files with NOT_FOUND and keeps the stream usable", async () => {
    const { ask, close } = openReflection(current().address, "v1");
    try {
      const unknown = await ask({ $case: "fileContainingSymbol", value: "no.such.Type" });
      expect(unknown).toMatchObject({ $case: "errorResponse", value: { errorCode: 5 } });
      const file = await ask({ $case: "fileByFilename", value: "no/such.proto" });
      expect(file).toMatchObject({ $case: "errorResponse", value: { errorCode: 5 } });
      const list = await ask({ $case: "listServices", value: "" });
      expect(list?.$case).toBe("listServicesResponse");
    } finally {
      close();
    }
  });
});
