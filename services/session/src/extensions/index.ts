export * from "./tool-source.js";
export { validateExtensionConfig, validateExtensionConfigs, DEFAULT_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, type ExtensionConfig, type RawExtensionConfig } from "@skein/goose-sessions/goose-format";
export * from "./service-config.js";
export { McpExtension, ExtensionStartError, TOOL_SEPARATOR, DEFAULT_START_TIMEOUT_MS, type McpExtensionOptions } from "./mcp-extension.js";
export { ExtensionSet, type ExtensionSetOptions } from "./extension-set.js";
export { PidRegistry, REGISTRY_DIR, type RecordedProcess } from "./pid-registry.js";
export { DEFAULT_KILL_GRACE_MS } from "./end-group.js";
