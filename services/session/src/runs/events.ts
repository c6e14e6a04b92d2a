import type { FinishKind } from "../agent-loop/loop.js";
import type { GooseMessage, PendingApproval } from "@skein/goose-sessions/goose-format";

/** What happens in a run, in domain terms; the handlers turn it into proto. */
export type RunEvent =
  | { readonly kind: "textDelta"; readonly text: string }
  | { readonly kind: "message"; readonly message: GooseMessage }
  | { readonly kind: "usage"; readonly input: number; readonly output: number; readonly total: number }
  | { readonly kind: "finished"; readonly reason: FinishKind }
  | { readonly kind: "error"; readonly code: string; readonly message: string }
  | { readonly kind: "approval"; readonly approval: PendingApproval };

export interface SessionEvent {
  /** Per session, from 1, strictly increasing within this service instance. */
  readonly seq: number;
  readonly requestId: string;
  readonly sessionId: string;
  readonly event: RunEvent;
}

/** What GetSession and ListSessions show of a session's live state (this host's slots, or the cluster's database). */
export interface LiveState {
  readonly runningRequestId: string;
  readonly lastSeq: number;
}

/**
 * Where a run's events go: the session's event log (this process's EventLog,
 * or with replicas the database's). Handed to the run by whoever starts it;
 * the log numbers the event and fans it out.
 */
export interface RunEventSink {
  publish(requestId: string, event: RunEvent): void;
}

/** Counts what runs publish (skein_session_stream_events_total) on its way into each session's log. */
export class PublishedEvents {
  private count = 0;

  get total(): number {
    return this.count;
  }

  /** `log`, counted. */
  into(log: RunEventSink): RunEventSink {
    return {
      publish: (requestId, event) => {
        this.count++;
        log.publish(requestId, event);
      },
    };
  }
}
