import type { Logger } from "@skein/runtime";
import type { ClusterStats, Coordination, SlotEventLog, StoreWatch } from "../coordination/coordination.js";
import type { LiveState } from "../runs/events.js";
import type { SessionStore } from "@skein/goose-sessions";
import { postgresProbe, type PostgresSettings } from "@skein/goose-sessions/postgres";
import { StoreHealth } from "../store/store-health.js";
import type { RunOwnership } from "../coordination/run-ownership.js";
import type { ReplicaIdentity } from "../replica-identity.js";
import { SessionCluster } from "./session-cluster.js";

/** Replicas on one PostgreSQL database: the SessionCluster behind the coordination seam. */
export class ClusterCoordination implements Coordination {
  readonly resumedElsewhere = true;

  private constructor(
    private readonly cluster: SessionCluster,
    private readonly settings: PostgresSettings,
    private readonly replica: ReplicaIdentity,
  ) {}

  /** Connects as SessionCluster.open does (a database that cannot be used is a ConfigError). */
  static async open(settings: PostgresSettings, eventBuffer: number, replica: ReplicaIdentity, log: Logger): Promise<ClusterCoordination> {
    return new ClusterCoordination(await SessionCluster.open(settings, eventBuffer, replica, log), settings, replica);
  }

  get store(): SessionStore {
    return this.cluster.store;
  }

  get ownership(): RunOwnership {
    return this.cluster.ownership;
  }

  /** The database's log: its own window (SKEIN_EVENT_BUFFER rows) and numbering. */
  eventLog(sessionId: string): SlotEventLog {
    return this.cluster.eventLog(sessionId);
  }

  /** From the database, whichever replica runs the session. */
  liveStates(ids: readonly string[]): Promise<Map<string, LiveState>> {
    return this.cluster.liveStates(ids);
  }

  cancelElsewhere(sessionId: string, requestId: string): Promise<boolean> {
    return this.cluster.cancel(sessionId, requestId);
  }

  /** A probe of the database on a connection of its own (StoreHealth: never one per request). */
  watchHealth(report: (serving: boolean) => void, log: Logger): StoreWatch {
    const probe = postgresProbe(this.settings.databaseUrl, `skein-session ${this.replica.id}`, log);
    const watcher = new StoreHealth({ probe: probe.probe, target: this.store.target, log, report });
    return { suspect: () => watcher.suspect(), close: async () => (await watcher.close(), await probe.close()) };
  }

  stats(): Promise<ClusterStats> {
    return this.cluster.stats();
  }

  close(): Promise<void> {
    return this.cluster.close();
  }
}
