export * from "./grpc.js";
export * from "./service-process.js";
