import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { openaiText, processesUnder, startReplicaCluster, type PostgresCluster, type ReplicaCluster, type SessionReplica } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { fixtureEntry } from "../extensions/helpers.js";
import { TaggedModel, type AnyEvent } from "./replicas.js";

/**
 * The cluster a cross-replica test file (postgres/replicas-*.e2e.test.ts) runs
 * against: three real session service processes, A, B and C, on a database of
 * the suite's PostgreSQL, one fake provider answering by tag. A file calls
 * useReplicaCluster() once at its top; its tests then use the bindings below,
 * which that file's beforeAll fills (each test file runs in a worker of its
 * own, with its own copy of this module).
 */
export let pgc: PostgresCluster;
export let c: ReplicaCluster;
export let model: TaggedModel;
/** The sessions' working directory. */
export let work: string;
export let A: SessionReplica, B: SessionReplica, C: SessionReplica;

/** SKEIN_EVENT_BUFFER of the steady cluster: the replay window a watcher's cursor must stay in. */
export const EVENT_BUFFER = 64;
/** SKEIN_RUN_LEASE_MS of the faults cluster: short for quick takeovers, yet renewed (every third) with room for a loaded machine's stalls. */
export const LEASE_MS = 3_000;
/** Long enough for any takeover on a loaded machine (the contract: within SKEIN_RUN_LEASE_MS). */
export const TAKEOVER_WAIT = 60_000;

/** Extension processes a killed replica left behind (its children, now orphans): ended after each test of a faults file. */
export const orphans = new Set<number>();

/**
 * "steady": no takeover is wanted (the default 10 s lease, so no loaded-machine
 * stall ever looks like a dead replica) and a small replay window.
 * "faults": the short LEASE_MS and a 1 s shutdown grace; after each test the
 * orphans are ended and every replica runs again (a frozen one woken, a killed
 * or stopped one restarted), so tests may kill, freeze and stop replicas.
 */
export function useReplicaCluster(kind: "steady" | "faults"): void {
  beforeAll(async () => {
    pgc = await testPostgres();
    work = await mkdtemp(join(tmpdir(), `skein-replicas-${kind}-`));
    c = await startReplicaCluster(
      kind === "steady"
        ? { postgres: pgc, replicas: 3, leaseMs: 10_000, env: { SKEIN_EVENT_BUFFER: String(EVENT_BUFFER) } }
        : { postgres: pgc, replicas: 3, leaseMs: LEASE_MS, env: { SKEIN_SHUTDOWN_GRACE_MS: "1000" } },
    );
    [A, B, C] = c.replicas as [SessionReplica, SessionReplica, SessionReplica];
    model = new TaggedModel(c.model, () => ({ events: openaiText("Hello from the fake model.") }));
  });
  if (kind === "faults") afterEach(restoreReplicas);
  afterAll(async () => {
    await c?.close();
    await pgc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });
}

async function restoreReplicas(): Promise<void> {
  for (const pid of orphans) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  orphans.clear();
  // Every test leaves all replicas running (a frozen one woken first).
  for (const r of c?.replicas ?? []) {
    if (r.alive) r.resume();
    else await r.restart();
  }
}

/** Notes the fixture extension processes every replica runs now, to be ended after the test should a kill orphan them. */
export function keepFixturesAsOrphans(): void {
  for (const r of c.replicas) for (const pid of processesUnder(r.pid, fixtureEntry)) orphans.add(pid);
}

/** The file's last test: whatever its replicas went through (killed, frozen, restarted, refused), none logged the database password. */
export function itLogsNoPassword(): void {
  it("no replica ever logs the database password", () => {
    for (const r of c.replicas) {
      const text = [...r.svc.output, ...r.svc.logs.map((l) => JSON.stringify(l))].join("\n");
      expect(text.length).toBeGreaterThan(0);
      expect(text.includes(pgc.password), `replica ${r.name}'s log`).toBe(false);
    }
  });
}

export const texts = (events: AnyEvent[]) => events.flatMap((e) => (e.event?.$case === "textDelta" ? [e.event.value.text] : []));
export const isSeqIncreasing = (events: AnyEvent[]) => events.every((e, i) => i === 0 || e.seq > events[i - 1]!.seq);

/** Every toolRequest of the history has its toolResponse (goose's rule for a valid conversation). */
export function unansweredToolRequests(messages: pb.Message[]): string[] {
  const asked = messages.flatMap((m) => m.content.flatMap((x) => (x.kind?.$case === "toolRequest" ? [x.kind.value.id] : [])));
  const answered = new Set(messages.flatMap((m) => m.content.flatMap((x) => (x.kind?.$case === "toolResponse" ? [x.kind.value.id] : []))));
  return asked.filter((id) => !answered.has(id));
}
