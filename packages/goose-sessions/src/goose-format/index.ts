/** goose's data format: messages and content items, session metadata, skein's record inside it, approvals, extension configs. */
export * from "./messages.js";
export * from "./skein-metadata.js";
export * from "./approval-format.js";
export * from "./extension-config.js";
