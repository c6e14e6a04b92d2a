export * from "./grpc.js";
export * from "./service-process.js";
export * from "./sse-server.js";
export * from "./openai-server.js";
export * from "./anthropic-server.js";
export * from "./dynamic.js";
export * from "./certs.js";
export * from "./metrics.js";
