import { closeSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import pg from "pg";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultMetadata, message, textItem } from "@skein/goose-sessions/goose-format";
import { DatabaseBusyError, SqliteSessionStore } from "@skein/goose-sessions/sqlite";
import { startupProblem, storeFault, type StoreTarget } from "@skein/goose-sessions";

/**
 * The one mapping of storage failures (store-faults.ts), fed the errors the
 * drivers really throw: better-sqlite3 on a read-only connection and on a
 * damaged file, node-postgres on a refused connection, Node's fs on ENOSPC.
 */
const log = pino({ level: "silent" });
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-store-faults-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sqliteAt = (path: string): StoreTarget => ({ kind: "sqlite", location: path });
const postgresAt: StoreTarget = { kind: "postgres", location: "postgresql://u:***@db:5432/skein" };

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("did not throw");
}

describe("sqlite", () => {
  it("SQLITE_READONLY → FAILED_PRECONDITION naming the file", () => {
    const path = join(dir, "sessions.db");
    new Database(path).exec("CREATE TABLE t (x)");
    const ro = new Database(path, { readonly: true });
    const err = thrown(() => ro.exec("INSERT INTO t VALUES (1)"));
    ro.close();
    const f = storeFault(err, sqliteAt(path));
    expect(f?.code).toBe(status.FAILED_PRECONDITION);
    expect(f?.eventCode).toBe("STORE_READ_ONLY");
    expect(f?.message).toContain(path);
  });

  it("SQLITE_CORRUPT of a damaged database → DATA_LOSS naming the file, which is left as it was", async () => {
    const store = await SqliteSessionStore.open(dir, log, { syncEachMessage: false });
    const s = await store.create(defaultMetadata(dir, ""));
    for (let i = 0; i < 400; i++) await store.append(s.id, message("user", [textItem(`message ${i} `.repeat(40))]));
    await store.close();
    // Garbage over the second half of the file (the messages' pages), the header and schema left intact.
    const path = store.path;
    const size = statSync(path).size;
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(size / 2, 0xa5), 0, size / 2, size / 2);
    closeSync(fd);
    const before = readFileSync(path);
    // Opening reads the messages (the tool-result form): the damage shows there already.
    const err = await SqliteSessionStore.open(dir, log, { syncEachMessage: false }).then(
      async (s2) => (await s2.close(), new Error("opened a damaged database")),
      (e: unknown) => e,
    );
    const f = storeFault(err, sqliteAt(path));
    expect(f?.code, String(err)).toBe(status.DATA_LOSS);
    expect(f?.eventCode).toBe("STORE_DAMAGED");
    expect(f?.message).toContain(path);
    expect(startupProblem(err, sqliteAt(path))).toBe(`${path} is damaged (SQLITE_CORRUPT: database disk image is malformed); it was left unchanged`);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it("SQLITE_NOTADB at start-up: one line naming the file", () => {
    const path = join(dir, "sessions.db");
    const db = new Database(path);
    db.close();
    writeFileSync(path, "not sqlite\n".repeat(100));
    const err = thrown(() => new Database(path).pragma("journal_mode = WAL"));
    expect(startupProblem(err, sqliteAt(path))).toBe(`${path} is not a SQLite database (SQLITE_NOTADB); it was left unchanged`);
    expect(storeFault(err, sqliteAt(path))?.code).toBe(status.DATA_LOSS);
  });

  it("SQLITE_BUSY past its window stays UNAVAILABLE", () => {
    const f = storeFault(new DatabaseBusyError(30_000), sqliteAt(join(dir, "sessions.db")));
    expect(f?.code).toBe(status.UNAVAILABLE);
    expect(f?.eventCode).toBe("STORE_UNAVAILABLE");
  });
});

describe("file system", () => {
  it("ENOSPC under the store → RESOURCE_EXHAUSTED; EACCES elsewhere is not the store's", () => {
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", path: join(dir, "x.jsonl") });
    const f = storeFault(enospc, { kind: "jsonl", location: dir });
    expect(f?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(f?.message).toContain(`no space left for the session store at ${dir}`);
    const elsewhere = Object.assign(new Error("EACCES: permission denied, open '/etc/x'"), { code: "EACCES", path: "/etc/x" });
    expect(storeFault(elsewhere, { kind: "jsonl", location: dir })).toBeUndefined();
    expect(storeFault(new TypeError("a bug"), { kind: "jsonl", location: dir })).toBeUndefined();
  });
});

describe("postgres", () => {
  it("a refused connection → UNAVAILABLE 'the session database is unreachable: … (retry)'", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const client = new pg.Client({ connectionString: `postgresql://u:p@127.0.0.1:${port}/db`, connectionTimeoutMillis: 2_000 });
    const err = await client.connect().then(() => undefined, (e: unknown) => e);
    const f = storeFault(err, postgresAt);
    expect(f?.code).toBe(status.UNAVAILABLE);
    expect(f?.message).toMatch(/^the session database is unreachable: .*ECONNREFUSED.* \(retry\)$/);
  });

  it.each([
    ["57P01", status.UNAVAILABLE, "terminating connection due to administrator command"],
    ["57P03", status.UNAVAILABLE, "the database system is starting up"],
    ["08006", status.UNAVAILABLE, "connection failure"],
    ["53100", status.RESOURCE_EXHAUSTED, "could not extend file: No space left on device"],
    ["25006", status.FAILED_PRECONDITION, "cannot execute INSERT in a read-only transaction"],
    ["XX001", status.DATA_LOSS, "invalid page in block 4"],
  ])("SQLSTATE %s → %s", (code, expected, text) => {
    const err = Object.assign(new pg.DatabaseError(text, 0, "error"), { code });
    expect(storeFault(err, postgresAt)?.code).toBe(expected);
  });

  it("SQL errors of other classes are not storage faults", () => {
    const err = Object.assign(new pg.DatabaseError("duplicate key", 0, "error"), { code: "23505" });
    expect(storeFault(err, postgresAt)).toBeUndefined();
  });

  it("the pool's timeout and a terminated connection → UNAVAILABLE", () => {
    expect(storeFault(new Error("timeout exceeded when trying to connect"), postgresAt)?.code).toBe(status.UNAVAILABLE);
    expect(storeFault(new Error("Connection terminated unexpectedly"), postgresAt)?.code).toBe(status.UNAVAILABLE);
  });
});


