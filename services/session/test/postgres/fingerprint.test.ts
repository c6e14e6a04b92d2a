// PostgresSessionStore.fingerprint: changes with every write to the session, by this replica or
// another one (a second store on the same database); undefined for a session that does not exist.
import pino from "pino";
import { type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, expect, it } from "vitest";
import { defaultMetadata, message, textItem } from "../../src/goose-format/messages.js";
import { PostgresSessionStore } from "../../src/store/postgres/postgres-store.js";

const log = pino({ level: "silent" });
let cluster: PostgresCluster;

beforeAll(async () => {
  cluster = await testPostgres();
});
afterAll(async () => {
  await cluster?.stop();
});

it("changes with an append or a metadata update on either replica, and stays while nobody writes", async () => {
  const url = await cluster.createDatabase();
  const a = await PostgresSessionStore.open(url, log);
  const b = await PostgresSessionStore.open(url, log);
  try {
    const { id } = await a.create(defaultMetadata("/tmp", "d"));
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
  } finally {
    await a.close();
    await b.close();
  }
});
