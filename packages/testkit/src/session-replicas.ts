import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { session as pb } from "@skein/proto";
import { startOpenAIServer } from "./openai-server.js";
import { startPostgres, type PostgresCluster } from "./postgres.js";
import { isolatedDirs, startService, type ServiceProcess } from "./service-process.js";
import type { FakeModelServer } from "./sse-server.js";
import { connect } from "./grpc.js";

/**
 * Several real session service processes on one test PostgreSQL database
 * (SKEIN_SESSION_STORE=postgres), all talking to one fake OpenAI-compatible
 * provider: the issue-11 deployment on one host, for e2e tests and benchmarks.
 *
 *   const c = await startReplicaCluster({ replicas: 3 });
 *   try { const [a, b] = c.replicas; … await c.rows("SELECT …") } finally { await c.close() }
 *
 * Every replica gets its own private HOME and data directories, kept across its
 * restarts (a replica restarting in place finds its pid registry and reaps the
 * extension processes its predecessor left), and a replica id
 * `<name>-<generation>` (A-1, after a restart A-2: unique per process, like the
 * service's own default hostname:pid). close() ends every replica (SIGKILL,
 * which also ends a SIGSTOPped one), the clients, the pool, the fake provider
 * and, when the cluster started it, PostgreSQL. Should a test worker die
 * before close(), startService's and startPostgres' exit hooks still end the
 * processes and remove their directories.
 */
export interface SessionReplica {
  /** "A", "B", … in start order. */
  readonly name: string;
  /** SKEIN_REPLICA_ID of the current process (changes with restart()). */
  readonly replicaId: string;
  readonly svc: ServiceProcess;
  /** A client on this replica's address (replaced by restart()). */
  readonly client: pb.SessionServiceClient;
  readonly address: string;
  readonly pid: number;
  /** kill -9: no shutdown hook runs; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, the graceful shutdown; resolves with the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGSTOP / SIGCONT: the process freezes (stops renewing leases) and later wakes up unaware. */
  pause(): void;
  resume(): void;
  /** Starts a fresh process for this replica (after kill/stop), with `extraEnv` on top. */
  restart(extraEnv?: Record<string, string>): Promise<void>;
  /** A new client on this replica (e.g. a second watcher connection); closed by close(). */
  newClient(): pb.SessionServiceClient;
  readonly alive: boolean;
}

export interface ReplicaCluster {
  readonly postgres: PostgresCluster;
  /** SKEIN_DATABASE_URL of every replica. */
  readonly databaseUrl: string;
  /** The database's name (for pg_stat_database or terminateConnections). */
  readonly databaseName: string;
  readonly model: FakeModelServer;
  readonly replicas: SessionReplica[];
  /** The environment every replica gets (store, database, provider, lease), before per-replica extras. */
  readonly env: Readonly<Record<string, string>>;
  /** Starts one more replica on the same database. */
  addReplica(extraEnv?: Record<string, string>): Promise<SessionReplica>;
  /** Reads the database directly (checks from outside the service). */
  rows<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  close(): Promise<void>;
}

export interface ReplicaClusterOptions {
  /** How many replicas to start (default 2); they start at the same time, against a fresh database. */
  replicas?: number;
  /** SKEIN_RUN_LEASE_MS (default 2000 ms: a takeover within seconds, yet no false takeover on a loaded machine). */
  leaseMs?: number;
  /** Extra environment for every replica (e.g. SKEIN_EVENT_BUFFER). */
  env?: Record<string, string>;
  /** Per-replica extra environment, by index. */
  replicaEnv?: Record<string, string>[];
  /** A PostgreSQL to reuse (one per test file); the cluster then only creates a database in it and never stops it. */
  postgres?: PostgresCluster;
  /** A fake provider to reuse; otherwise one is started (default answer "Hello from the fake model."). */
  model?: FakeModelServer;
}

const NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/** Replica homes not yet removed: removed at the worker's exit should a test die before close(). */
const liveHomes = new Set<string>();
process.on("exit", () => {
  for (const home of liveHomes) rmSync(home, { recursive: true, force: true });
});

export async function startReplicaCluster(opts: ReplicaClusterOptions = {}): Promise<ReplicaCluster> {
  const ownPostgres = !opts.postgres;
  const postgres = opts.postgres ?? (await startPostgres());
  const ownModel = !opts.model;
  let model: FakeModelServer | undefined = opts.model;
  let pool: pg.Pool | undefined;
  const replicas: SessionReplica[] = [];
  const homes: string[] = [];
  const clients = new Set<pb.SessionServiceClient>();
  const close = async () => {
    for (const c of clients) c.close();
    clients.clear();
    await Promise.all(replicas.map((r) => r.svc.stop("SIGKILL")));
    for (const home of homes) (rmSync(home, { recursive: true, force: true }), liveHomes.delete(home));
    await pool?.end().catch(() => undefined);
    if (ownModel) await model?.close();
    if (ownPostgres) await postgres.stop();
  };
  try {
    const databaseUrl = await postgres.createDatabase();
    const databaseName = new URL(databaseUrl).pathname.slice(1);
    model ??= await startOpenAIServer();
    pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: "replica-cluster-checks" });
    // A fault test may end every backend of the database: an idle check connection then just goes away.
    pool.on("error", () => undefined);
    const env: Record<string, string> = {
      SKEIN_SESSION_STORE: "postgres",
      SKEIN_DATABASE_URL: databaseUrl,
      SKEIN_RUN_LEASE_MS: String(opts.leaseMs ?? 2_000),
      SKEIN_PROVIDER: "openai",
      SKEIN_MODEL: "fake-model",
      OPENAI_BASE_URL: model.baseURL,
      SKEIN_PROVIDER_MAX_RETRIES: "0",
      ...opts.env,
    };
    const newClient = (address: string) => {
      const c = connect(pb.SessionServiceClient, address);
      clients.add(c);
      return c;
    };
    const launch = async (index: number, extraEnv: Record<string, string>): Promise<SessionReplica> => {
      const name = NAMES[index] ?? `R${index}`;
      const home = mkdtempSync(join(tmpdir(), `skein-replica-${name}-`));
      homes.push(home);
      liveHomes.add(home);
      let generation = 0;
      let svc: ServiceProcess;
      let client: pb.SessionServiceClient;
      let replicaId = "";
      const spawnOne = async (more: Record<string, string>) => {
        replicaId = `${name}-${++generation}`;
        // Several replicas start at once, on a machine shared with other jobs: give them time.
        svc = await startService("session", { ...env, ...isolatedDirs(home), SKEIN_REPLICA_ID: replicaId, ...extraEnv, ...more }, { readyTimeoutMs: 60_000 });
        client = newClient(svc.address);
      };
      await spawnOne({});
      const r: SessionReplica = {
        name,
        get replicaId() {
          return replicaId;
        },
        get svc() {
          return svc;
        },
        get client() {
          return client;
        },
        get address() {
          return svc.address;
        },
        get pid() {
          return svc.proc.pid!;
        },
        get alive() {
          return svc.proc.exitCode === null && svc.proc.signalCode === null;
        },
        async kill() {
          await svc.stop("SIGKILL");
        },
        stop: () => svc.stop("SIGTERM"),
        pause: () => void svc.proc.kill("SIGSTOP"),
        resume: () => void svc.proc.kill("SIGCONT"),
        async restart(more = {}) {
          await svc.stop("SIGKILL");
          await spawnOne(more);
        },
        newClient: () => newClient(svc.address),
      };
      replicas.push(r);
      return r;
    };
    // All at once, as a deployment starts them: migrations must cope.
    // allSettled: when one fails, the others are in `replicas` before close() ends them.
    const started = await Promise.allSettled(Array.from({ length: opts.replicas ?? 2 }, (_, i) => launch(i, opts.replicaEnv?.[i] ?? {})));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    replicas.sort((a, b) => a.name.localeCompare(b.name));
    return {
      postgres,
      databaseUrl,
      databaseName,
      model,
      replicas,
      env,
      addReplica: (extraEnv = {}) => launch(replicas.length, extraEnv),
      rows: async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await pool!.query<T>(sql, params)).rows,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
