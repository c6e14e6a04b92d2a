import { ConfigError, type Logger, RepeatedFaults } from "@skein/runtime";
import { DELETED_CHANNEL, PostgresSessionStore, redactUrl, redactError, type PostgresSettings } from "@skein/goose-sessions/postgres";
import { EVENTS_CHANNEL, PgEventLog } from "./postgres/event-log.js";
import { EventFollower } from "./postgres/follower.js";
import { LeaseKeeper } from "./postgres/lease-keeper.js";
import { PgListener } from "./postgres/listener.js";
import { CANCEL_CHANNEL, RunLeases } from "./postgres/run-lease.js";
import { CancelSignals } from "./postgres/cancel-signals.js";
import { ClusterEventLog } from "./cluster-event-log.js";
import { LeasedRunOwnership } from "./leased-ownership.js";
import { LeaseSweeper } from "./lease-sweeper.js";
import type { ReplicaIdentity } from "../replica-identity.js";
import type { LiveState } from "../runs/events.js";
import type { ClusterStats } from "../coordination/coordination.js";
import { whileUnreachable } from "./database-wait.js";


/**
 * Everything a replica needs to share sessions with the others on one
 * PostgreSQL database: the store, run leases (with keeper, cancel signals and
 * the sweeper that takes over dead replicas' runs), the database event log and
 * its LISTEN connection. The primitives are in `./postgres/`: a run acquires
 * its lease (RunLeases), the LeaseKeeper renews it and CancelSignals watches
 * for a CancelReply from any replica; writes go through store.withLease(lease)
 * and PgEventLog.append(…, lease); then release. A lease not renewed for
 * SKEIN_RUN_LEASE_MS is taken over by the next acquire (any replica), which
 * reports the interrupted run. Watchers follow PgEventLog through the
 * EventFollower, woken by the PgListener's LISTEN connection. The session slots use it through `ownership` and
 * `eventLog`; the domain through `liveStates`, `cancel` and `stats`.
 */
export class SessionCluster {
  private readonly logs = new Map<string, ClusterEventLog>();
  private readonly appendFaults: RepeatedFaults;

  private constructor(
    readonly store: PostgresSessionStore,
    readonly ownership: LeasedRunOwnership,
    private readonly leases: RunLeases,
    private readonly events: PgEventLog,
    private readonly follower: EventFollower,
    private readonly keeper: LeaseKeeper,
    private readonly cancels: CancelSignals,
    private readonly listener: PgListener,
    private readonly sweeper: LeaseSweeper,
    private readonly log: Logger,
    private readonly eventBatchMs: number,
  ) {
    this.appendFaults = new RepeatedFaults(log, "appending run events", "sessions");
  }

  /**
   * Connects (migrating the schema under the advisory lock) and starts
   * listening. An unreachable database or one whose schema is newer than this
   * skein is a ConfigError: the service exits 2 with one line, password masked.
   */
  static async open(settings: PostgresSettings, eventBuffer: number, replica: ReplicaIdentity, log: Logger): Promise<SessionCluster> {
    const url = settings.databaseUrl;
    const applicationName = `skein-session ${replica.id}`.slice(0, 63);
    const unusable = (err: unknown) => new ConfigError(`SKEIN_DATABASE_URL=${JSON.stringify(redactUrl(url))} cannot be used: ${redactError(url, err).message.replace(/\s+/g, " ")}`);
    // Compose and Kubernetes may start the replica before its database: it waits SKEIN_DATABASE_WAIT_MS for it.
    const store = await whileUnreachable(() => PostgresSessionStore.open(url, log, { applicationName }), url, settings.databaseWaitMs, log).catch((err: unknown) => {
      throw unusable(err);
    });
    const listener = new PgListener(url, log, { channels: [EVENTS_CHANNEL, CANCEL_CHANNEL, DELETED_CHANNEL], applicationName: `${applicationName} listen`.slice(0, 63) });
    try {
      await listener.start();
    } catch (err) {
      await store.close();
      throw unusable(err);
    }
    const leases = new RunLeases(store.pool, settings.runLeaseMs);
    const events = new PgEventLog(store.pool, eventBuffer);
    const keeper = new LeaseKeeper(leases, replica.id, log);
    const cancels = new CancelSignals(leases, listener, replica.id);
    const follower = new EventFollower(events, listener);
    let cluster: SessionCluster | undefined;
    const ownership = new LeasedRunOwnership({ store, events, leases, keeper, cancels, owner: replica.id, log, drained: (id) => cluster!.drained(id) });
    const sweeper = new LeaseSweeper(leases, replica.id, { store, events, log }, log);
    cluster = new SessionCluster(store, ownership, leases, events, follower, keeper, cancels, listener, sweeper, log, settings.eventBatchMs);
    log.info({ database: redactUrl(url), replica: replica.id, runLeaseMs: settings.runLeaseMs }, "sessions on PostgreSQL, shared with other replicas");
    return cluster;
  }

  /** A session slot's event log: written to and followed through the database. */
  eventLog(sessionId: string): ClusterEventLog {
    const log = new ClusterEventLog(sessionId, {
      events: this.events,
      follower: this.follower,
      onDeleted: (id, fn) => this.listener.on(DELETED_CHANNEL, (payload) => payload === id && fn()),
      leaseOf: (id) => this.ownership.leaseOf(id),
      lost: (lease, reason) => this.ownership.lost(lease, reason),
      retryForMs: this.leases.leaseMs,
      batchMs: this.eventBatchMs,
      log: this.log,
      appendFaults: this.appendFaults,
      onClose: (closed) => {
        if (this.logs.get(sessionId) === closed) this.logs.delete(sessionId);
      },
    });
    this.logs.set(sessionId, log);
    return log;
  }

  private drained(sessionId: string): Promise<void> {
    return this.logs.get(sessionId)?.drained() ?? Promise.resolve();
  }

  /** Each session's last seq and running request (unexpired lease), in one query. */
  async liveStates(ids: readonly string[]): Promise<Map<string, LiveState>> {
    if (ids.length === 0) return new Map();
    const r = await this.store.pool.query<{ id: string; last_seq: number | null; request_id: string | null }>(
      `SELECT i.id, q.last_seq, r.request_id FROM unnest($1::text[]) AS i(id)
       LEFT JOIN session_seq q ON q.session_id = i.id
       LEFT JOIN session_runs r ON r.session_id = i.id AND r.lease_expires_at > now()`,
      [ids],
    );
    return new Map(r.rows.map((row) => [row.id, { lastSeq: row.last_seq ?? 0, runningRequestId: row.request_id ?? "" }]));
  }

  /**
   * CancelReply for a run on another replica: marks it and notifies its
   * owner, then waits (up to one lease period) until it has ended, as a local
   * cancel does. False when no (such) run holds the session.
   */
  async cancel(sessionId: string, requestId: string): Promise<boolean> {
    const asked = await this.leases.requestCancel(sessionId, requestId === "" ? undefined : requestId);
    if (asked === undefined) return false;
    const deadline = Date.now() + this.leases.leaseMs;
    while (Date.now() < deadline) {
      const h = await this.leases.holder(sessionId);
      if (!h || h.requestId !== asked) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return true;
  }

  async stats(): Promise<ClusterStats> {
    const r = await this.store.pool.query<{ runs: number; replicas: number }>(
      "SELECT COUNT(*) AS runs, COUNT(DISTINCT owner) AS replicas FROM session_runs WHERE lease_expires_at > now()",
    );
    return { runningReplies: r.rows[0]?.runs ?? 0, replicasRunning: r.rows[0]?.replicas ?? 0 };
  }

  /** After the slots stopped their runs: waits for their ends to be recorded, then disconnects. */
  async close(): Promise<void> {
    await this.sweeper.close();
    await this.ownership.drain();
    this.keeper.close();
    this.cancels.close();
    for (const log of [...this.logs.values()]) log.close();
    this.logs.clear();
    await this.listener.close();
    await this.store.close();
  }
}
