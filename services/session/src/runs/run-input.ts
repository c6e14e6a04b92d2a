import type { Logger } from "@skein/runtime";
import type { PendingApproval } from "@skein/goose-sessions/goose-format";
import type { SessionStore } from "@skein/goose-sessions";
import type { OutputLimits } from "../agent-loop/output-limits.js";
import type { ToolPermissions } from "../agent-loop/tool-policy.js";
import type { ToolSource } from "../extensions/tool-source.js";
import type { Provider } from "../providers/provider.js";
import type { RunEventSink } from "./events.js";
import type { OpenedSession, SessionHistory } from "./session-history.js";

// What a run is handed, apart from run.ts: the run and its approval turn (approval-turn.ts) both read it.

export interface CompactionSettings {
  /** Share of contextLimit the last usage may reach; 0 (or ≥ 1) turns auto-compaction off, as in goose. */
  readonly threshold: number;
  readonly contextLimit: number;
}

export interface RunInput {
  readonly sessionId: string;
  readonly requestId: string;
  readonly text: string;
  readonly store: SessionStore;
  /** The live agent's copy of the session (see SessionHistory). */
  readonly history: SessionHistory;
  readonly provider: Provider;
  readonly tools: ToolSource;
  readonly maxTurns: number;
  readonly limits: OutputLimits;
  readonly compaction: CompactionSettings;
  readonly signal: AbortSignal;
  /** The session's event log, through which the run publishes (see RunEventSink). */
  readonly events: RunEventSink;
  readonly log: Logger;
  /** goose's per-tool permissions (approve / smart_approve). */
  readonly permissions: ToolPermissions;
  /**
   * Set when this run continues a turn paused for approvals instead of adding
   * a user message: asks still undecided are denied with `deny` (a cancel, a
   * timeout); `stop` ends the turn once every tool call is answered.
   */
  readonly resume?: { readonly deny?: string; readonly stop: boolean };
  /** Told what waits when the turn pauses; the caller announces it once the run has let go of the session. */
  readonly paused: (pending: readonly PendingApproval[]) => void;
  /** The session as the caller already opened it (Reply checks it for a paused turn). */
  readonly opened?: OpenedSession;
}
