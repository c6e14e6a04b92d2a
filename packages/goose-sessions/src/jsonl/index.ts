/** goose ≤ 1.9's sessions: one JSONL file per session. */
export { JsonlSessionStore } from "./jsonl-store.js";
