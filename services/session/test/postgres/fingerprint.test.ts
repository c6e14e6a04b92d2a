// PostgresSessionStore.fingerprint: changes with every write to the session, by this replica or
// another one (a second store on the same database), except this replica's own leased writes (a
// run's: its live agent keeps the history it wrote); undefined for a session that does not exist.
// ownFingerprint answers the same without a read while only those writes came since the last read.
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { defaultMetadata, message, textItem } from "@skein/goose-sessions/goose-format";
import { PostgresSessionStore } from "@skein/goose-sessions/postgres";
import { RunLeases } from "../../src/cluster/postgres/run-lease.js";
import { SessionHistory } from "../../src/runs/session-history.js";

const log = pino({ level: "silent" });
let cluster: PostgresCluster;

beforeAll(async () => {
  cluster = await testPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});

/** Two replicas' stores on a fresh database, a session created on A, and a run's lease on it held by A. */
async function withReplicas(fn: (r: { a: PostgresSessionStore; b: PostgresSessionStore; id: string; run: PostgresSessionStore }) => Promise<void>): Promise<void> {
  const url = await cluster.createDatabase();
  const a = await PostgresSessionStore.open(url, log);
  const b = await PostgresSessionStore.open(url, log);
  try {
    const { id } = await a.create(defaultMetadata("/tmp", "d"));
    const { lease } = await new RunLeases(a.pool, 60_000).acquire(id, "req-1", "replica-a");
    await fn({ a, b, id, run: a.withLease(lease) });
  } finally {
    await a.close();
    await b.close();
  }
}

it("changes with an append or a metadata update on either replica, and stays while nobody writes", async () => {
  await withReplicas(async ({ a, b, id }) => {
    const seen = new Set<string | undefined>([await a.fingerprint(id)]);
    expect(await a.fingerprint(id)).toBe([...seen][0]);
    await b.append(id, message("user", [textItem("from the other replica")]));
    seen.add(await a.fingerprint(id));
    await b.updateMetadata(id, (m) => ({ ...m, total_tokens: 7 }));
    seen.add(await a.fingerprint(id));
    await a.append(id, message("assistant", [textItem("mine")]));
    seen.add(await a.fingerprint(id));
    expect(seen.size).toBe(4);
    expect(await a.fingerprint("20990101_1")).toBeUndefined();
  });
});

it("stays across this replica's own leased writes, and moves when another writer comes in between", async () => {
  await withReplicas(async ({ a, b, id, run }) => {
    const before = await a.fingerprint(id);
    await run.append(id, message("user", [textItem("question")]));
    await run.append(id, message("assistant", [textItem("answer")]));
    await run.updateMetadata(id, (m) => ({ ...m, total_tokens: 3 }));
    // Known without a read (what the run's keep() uses), and what a read answers.
    expect(a.ownFingerprint(id)).toBe(before);
    expect(await a.fingerprint(id)).toBe(before);
    await run.rewrite(id, (m) => ({ ...m, description: "compacted" }), [message("user", [textItem("summary")])]);
    expect(await a.fingerprint(id)).toBe(before);
    const seenByB = (await b.load(id))!;
    expect(seenByB.messages).toHaveLength(1);
    expect(seenByB.metadata).toMatchObject({ description: "compacted", total_tokens: 3 });
    // b sees every one of those writes.
    expect(await b.fingerprint(id)).not.toBe(before);

    await b.updateMetadata(id, (m) => ({ ...m, total_tokens: 9 }));
    const afterForeign = await a.fingerprint(id);
    expect(afterForeign).not.toBe(before);
    // A foreign write between our reading and our write: the fingerprint moves, never hides it.
    await b.append(id, message("user", [textItem("from b")]));
    await run.append(id, message("assistant", [textItem("mine again")]));
    expect(a.ownFingerprint(id)).toBeUndefined();
    expect(await a.fingerprint(id)).not.toBe(afterForeign);
    // An unleased write of our own is not accounted for either.
    const settled = await a.fingerprint(id);
    await a.append(id, message("user", [textItem("unleased")]));
    expect(await a.fingerprint(id)).not.toBe(settled);
  });
});

it("a live agent's history keeps its reply without reading the fingerprint again, and reloads after another replica's later write", async () => {
  await withReplicas(async ({ b, id, run }) => {
    const history = new SessionHistory();
    const reply = async (text: string) => {
      const opened = (await history.open(run, id))!;
      const messages = [...opened.session.messages, message("user", [textItem(text)])];
      await run.append(id, messages.at(-1)!);
      const written = (await run.updateMetadata(id, (m) => ({ ...m, total_tokens: messages.length })))!;
      const reads = vi.spyOn(run, "fingerprint");
      await history.keep(run, opened, messages, written);
      expect(reads).not.toHaveBeenCalled();
      reads.mockRestore();
      return opened;
    };
    expect((await reply("one")).reused).toBe(false);
    expect((await reply("two")).reused).toBe(true);
    // Another replica writes after this reply's own writes (and after its keep).
    await b.append(id, message("user", [textItem("from b")]));
    const next = (await history.open(run, id))!;
    expect(next.reused).toBe(false);
    expect(next.session.messages.map((m) => m.content)).toEqual(["one", "two", "from b"].map((text) => [{ type: "text", text }]));
  });
});
