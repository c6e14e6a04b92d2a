import { create, createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { reflectionV1, reflectionV1alpha } from "@skein/proto";
import { connect } from "@skein/testkit";

type Req = reflectionV1.ServerReflectionRequest;
type Res = reflectionV1.ServerReflectionResponse;

/** One reflection stream; ask() sends a request and reads its answer. */
export function openReflection(address: string, version: "v1" | "v1alpha", metadata?: import("@grpc/grpc-js").Metadata) {
  const Ctor = version === "v1" ? reflectionV1.ServerReflectionClient : reflectionV1alpha.ServerReflectionClient;
  const client = connect(Ctor, address);
  const stream = metadata ? client.serverReflectionInfo(metadata) : client.serverReflectionInfo();
  const responses = stream[Symbol.asyncIterator]();
  const ask = async (messageRequest: Req["messageRequest"]): Promise<Res["messageResponse"]> => {
    stream.write({ host: "", messageRequest } satisfies Req);
    const r = await responses.next();
    if (r.done) throw new Error("reflection stream ended early");
    return (r.value as Res).messageResponse;
  };
  return { ask, close: () => stream.end(), cancel: () => stream.cancel() };
}

/**
 * What grpcurl does with a server it knows nothing about: list services, fetch
 * the file of each, fetch missing dependencies by file name, then build a
 * registry in which every type must resolve.
 */
export async function describeServer(address: string, version: "v1" | "v1alpha", metadata?: import("@grpc/grpc-js").Metadata) {
  const { ask, close } = openReflection(address, version, metadata);
  try {
    const list = await ask({ $case: "listServices", value: "*" });
    if (list?.$case !== "listServicesResponse") throw new Error(`list_services failed: ${JSON.stringify(list)}`);
    const services = list.value.service.map((s) => s.name);
    const files = new Map<string, FileDescriptorProto>();
    const add = (r: Res["messageResponse"], what: string) => {
      if (r?.$case !== "fileDescriptorResponse") throw new Error(`${what}: ${JSON.stringify(r)}`);
      for (const b of r.value.fileDescriptorProto) {
        const f = fromBinary(FileDescriptorProtoSchema, b);
        files.set(f.name, f);
      }
    };
    for (const s of services) add(await ask({ $case: "fileContainingSymbol", value: s }), `file_containing_symbol ${s}`);
    const missing = () => [...files.values()].flatMap((f) => f.dependency).filter((d) => !files.has(d));
    for (let m = missing(); m.length > 0; m = missing()) {
      for (const dep of m) add(await ask({ $case: "fileByFilename", value: dep }), `file_by_filename ${dep}`);
    }
    const registry: FileRegistry = createFileRegistry(create(FileDescriptorSetSchema, { file: dependenciesFirst(files) }));
    return { services, registry, files };
  } finally {
    close();
  }
}

/** Files ordered so each comes after the files it imports (a missing import throws later, in the registry). */
function dependenciesFirst(files: Map<string, FileDescriptorProto>): FileDescriptorProto[] {
  const out: FileDescriptorProto[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    const f = files.get(name);
    if (!f || seen.has(name)) return;
    seen.add(name);
    f.dependency.forEach(visit);
    out.push(f);
  };
  [...files.keys()].forEach(visit);
  return out;
}
