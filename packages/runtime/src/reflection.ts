import { status } from "@grpc/grpc-js";
import { reflectionV1, reflectionV1alpha } from "@skein/proto";
import type { CallContext } from "./context.js";
import type { DescriptorIndex } from "./descriptors.js";
import { hosted, type HostedService } from "./service.js";

type Request = reflectionV1.ServerReflectionRequest;
type Response = reflectionV1.ServerReflectionResponse;

const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

/**
 * grpc.reflection v1 and v1alpha (older grpcurl speaks only v1alpha), both
 * answering from the descriptor index. The two versions share message shapes.
 */
export function reflectionServices(index: DescriptorIndex, serviceNames: () => readonly string[]): HostedService[] {
  const handler = (requests: AsyncIterable<Request>, ctx: CallContext) => answer(requests, ctx, index, serviceNames);
  return [
    hosted(REFLECTION_SERVICES[0], reflectionV1.ServerReflectionService, { serverReflectionInfo: handler }),
    hosted(REFLECTION_SERVICES[1], reflectionV1alpha.ServerReflectionService, { serverReflectionInfo: handler }),
  ];
}

async function* answer(requests: AsyncIterable<Request>, ctx: CallContext, index: DescriptorIndex, serviceNames: () => readonly string[]): AsyncGenerator<Response> {
  for await (const req of requests) {
    if (ctx.signal.aborted) return;
    yield { validHost: req.host, originalRequest: req, messageResponse: respond(req, index, serviceNames) };
  }
}

function respond(req: Request, index: DescriptorIndex, serviceNames: () => readonly string[]): Response["messageResponse"] {
  const r = req.messageRequest;
  const files = (found: Uint8Array[] | undefined, what: string): Response["messageResponse"] =>
    found
      ? { $case: "fileDescriptorResponse", value: { fileDescriptorProto: found.map((b) => Buffer.from(b)) } }
      : notFound(`${what} not found`);
  switch (r?.$case) {
    case "listServices":
      return { $case: "listServicesResponse", value: { service: serviceNames().map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.fileByName(r.value), `file ${r.value}`);
    case "fileContainingSymbol":
      return files(index.fileContainingSymbol(r.value), `symbol ${r.value}`);
    case "fileContainingExtension":
      return notFound(`extension ${r.value.containingType}(${r.value.extensionNumber}) not found`);
    case "allExtensionNumbersOfType":
      return index.hasSymbol(r.value)
        ? { $case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: [] } }
        : notFound(`type ${r.value} not found`);
    default:
      return { $case: "errorResponse", value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "message_request: one of its fields must be set" } };
  }
}

function notFound(errorMessage: string): Response["messageResponse"] {
  return { $case: "errorResponse", value: { errorCode: status.NOT_FOUND, errorMessage } };
}
