import { fileURLToPath } from "node:url";

export * as session from "./gen/skein/session/v1/session.js";
export * as fleet from "./gen/skein/fleet/v1/fleet.js";
export * as health from "./gen/grpc/health/v1/health.js";
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection.js";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection.js";

/** FileDescriptorSet (with imports) written by `buf build`; served by reflection. */
export const descriptorSetPath = fileURLToPath(new URL("../descriptors/skein.binpb", import.meta.url));

/** The .proto sources, for clients that load the contract dynamically. */
export const protoRoot = fileURLToPath(new URL("../../../proto", import.meta.url));
