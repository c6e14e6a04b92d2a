import type { Feed, Logger } from "@skein/runtime";
import { EventLog, type EventBudget } from "../runs/event-log.js";
import type { LiveState, RunEvent, SessionEvent } from "../runs/events.js";
import type { SessionStore } from "@skein/goose-sessions";
import { LocalRunOwnership, type RunOwnership } from "./run-ownership.js";

/**
 * What the slot needs of its event log: this process's EventLog, or, with
 * replicas on one database, the database's (cluster/cluster-event-log.ts).
 */
export interface SlotEventLog {
  readonly lastSeq: number;
  readonly followers: number;
  skipTo(seq: number): void;
  publish(requestId: string, event: RunEvent): void;
  subscribe(signals: AbortSignal[]): Feed<SessionEvent>;
  follow(afterSeq: number, signals: AbortSignal[]): Feed<SessionEvent>;
  releaseWindow(): void;
  close(): void;
}

/** Totals across the replicas sharing the database (with replicas only). */
export interface ClusterStats {
  readonly runningReplies: number;
  readonly replicasRunning: number;
}

/** What an in-process event log is made with: its replay window and where its numbering resumes. */
export interface EventWindow {
  readonly capacity: number;
  readonly startSeq: number;
  readonly budget: EventBudget;
}

/** What watches the store's reachability for the health service. */
export interface StoreWatch {
  /** A call met an unreachable store: probe now rather than at the next tick. */
  suspect(): void;
  close(): Promise<void>;
}

/**
 * How this process shares sessions with others, in one seam: on one host
 * nothing is shared (LocalCoordination); replicas on one PostgreSQL database
 * share the store, run leases, event logs, cancels and totals
 * (ClusterCoordination, cluster/cluster-coordination.ts). server.ts picks one;
 * the domain and the slots ask it instead of branching on the mode.
 */
export interface Coordination {
  /** The sessions' store (with replicas: the shared database's). */
  readonly store: SessionStore;
  /** Who may run work on a session right now. */
  readonly ownership: RunOwnership;
  /**
   * Whether a Reply's stream, once its run pauses for tool approvals, follows
   * the session's shared log: with replicas any of them may resume the run.
   */
  readonly resumedElsewhere: boolean;
  /** A session slot's event log: in this process within `window`, or the database's. */
  eventLog(sessionId: string, window: EventWindow): SlotEventLog;
  /** Each session's running request and last seq: `here` answers for this process when nothing else can know. */
  liveStates(ids: readonly string[], here: (id: string) => LiveState): Promise<Map<string, LiveState>>;
  /** CancelReply for work this process does not run (another replica's): false when no (such) work holds the session. */
  cancelElsewhere(sessionId: string, requestId: string): Promise<boolean>;
  /**
   * Follows the store's reachability, telling `report` each change (the
   * health service's serving status): replicas probe their database, so load
   * balancers route around one that cannot reach it; on one host nothing is probed.
   */
  watchHealth(report: (serving: boolean) => void, log: Logger): StoreWatch;
  /** Totals across replicas (undefined on one host). */
  stats(): Promise<ClusterStats | undefined>;
  /** After the slots have stopped: ends what the coordination holds, the store last. */
  close(): Promise<void>;
}

/** One host: ownership in memory, event logs in this process, nobody else to ask. */
export class LocalCoordination implements Coordination {
  readonly ownership: RunOwnership;
  readonly resumedElsewhere = false;

  constructor(readonly store: SessionStore) {
    this.ownership = new LocalRunOwnership(store);
  }

  eventLog(sessionId: string, window: EventWindow): SlotEventLog {
    return new EventLog(sessionId, window.capacity, window.startSeq, window.budget);
  }

  async liveStates(ids: readonly string[], here: (id: string) => LiveState): Promise<Map<string, LiveState>> {
    return new Map(ids.map((id) => [id, here(id)]));
  }

  async cancelElsewhere(): Promise<boolean> {
    return false;
  }

  /** A local store's faults are the call's to report; the process serves as long as it runs. */
  watchHealth(): StoreWatch {
    return { suspect: () => undefined, close: async () => undefined };
  }

  async stats(): Promise<ClusterStats | undefined> {
    return undefined;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
