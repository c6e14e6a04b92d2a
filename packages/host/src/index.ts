export * from "./atomic-write.js";
export * from "./keyed-lock.js";
export * from "./proc.js";
export * from "./instance-lock.js";
export * from "./end-processes.js";
export * from "./tmux-paths.js";
export * from "./real-path.js";
export * from "./find-on-path.js";
