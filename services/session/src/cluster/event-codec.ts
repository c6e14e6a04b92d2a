import type { RunEvent } from "../runs/events.js";

/**
 * A run event as stored in session_events.event: its JSON (goose messages are
 * JSON already), so any replica, and a person with psql, can read it back.
 */
export function encodeEvent(e: RunEvent): Buffer {
  return Buffer.from(JSON.stringify(e), "utf8");
}

export function decodeEvent(b: Buffer): RunEvent {
  return JSON.parse(b.toString("utf8")) as RunEvent;
}
