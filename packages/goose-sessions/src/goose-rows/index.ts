/** goose's row encoding of messages and session columns, shared by sessions.db and PostgreSQL. */
export { toGooseContent, toolResultFormFor, type ToolResultForm } from "./content.js";
