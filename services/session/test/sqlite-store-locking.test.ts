import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import { statSync } from "node:fs";
import { copyFile, mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { defaultMetadata, message, textItem, textOf } from "@skein/goose-sessions/goose-format";
import { importJsonlFile, jsonlFilesIn } from "@skein/goose-sessions";
import { DB_NAME } from "@skein/goose-sessions/sqlite";
import { openSessionStore } from "../src/store/open-store.js";
import { expectGooseReadable, openLikeGoose, type GooseMessageJson } from "./support/goose-db.js";
import { fixturesDir } from "./support/goose-file.js";
import { silentLog, useSqliteStore } from "./support/sqlite-store-fixture.js";

// The store's transactions, another process holding the write lock, and goose's one-time JSONL import.
const fx = useSqliteStore();

describe("units of work on the connection (one shared transaction wrapper)", () => {
  it("a write whose work throws is rolled back whole; later reads and writes run in their own transactions", async () => {
    await fx.open();
    const { id } = await fx.store!.create(defaultMetadata("/w", "before"));
    await fx.store!.append(id, message("user", [textItem("one")]));
    const fingerprint = await fx.store!.fingerprint(id);
    await expect(
      fx.store!.updateMetadata(id, () => {
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    await expect(fx.store!.fingerprint(id)).resolves.toBe(fingerprint);
    await fx.store!.append(id, message("user", [textItem("two")]));
    const loaded = (await fx.store!.load(id))!;
    expect(loaded.metadata.description).toBe("before");
    expect(loaded.messages.map((m) => m.content)).toEqual([[{ type: "text", text: "one" }], [{ type: "text", text: "two" }]]);
  });
});

describe("writes asked for in one turn of the event loop share one commit", () => {
  it("each in its own savepoint: one that throws is rolled back alone, the others commit, in the order asked; fewer WAL frames than one commit each", async () => {
    await fx.open();
    const { id } = await fx.store!.create(defaultMetadata("/w", "before"));
    const wal = () => statSync(join(fx.dir, `${DB_NAME}-wal`)).size;
    const text = (t: string) => message("user", [textItem(t)]);
    let start = wal();
    for (const t of ["a", "b", "c"]) await fx.store!.append(id, text(t));
    const oneEach = wal() - start;
    start = wal();
    const outcomes = await Promise.allSettled([
      fx.store!.append(id, text("d")),
      fx.store!.updateMetadata(id, (m) => {
        fx.store!.append(id, text("asked for inside a unit: the next group")).catch(() => undefined);
        if (m.description === "before") throw new Error("refused");
        return m;
      }),
      fx.store!.append(id, text("e")),
      fx.store!.updateMetadata(id, (m) => ({ ...m, description: "after" })),
    ]);
    const together = wal() - start;
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ message: "refused" });
    // Three messages and a metadata update in one commit wrote fewer pages than three messages in three.
    expect(together).toBeLessThan(oneEach);
    await fx.store!.append(id, text("f"));
    const loaded = (await fx.store!.load(id))!;
    expect(loaded.metadata.description).toBe("after");
    expect(loaded.messages.map((m) => textOf(m.content))).toEqual(["a", "b", "c", "d", "e", "asked for inside a unit: the next group", "f"]);
  });
});

describe("a second process holding the write lock", () => {
  let holder: ChildProcess | undefined;
  afterEach(() => {
    holder?.kill("SIGKILL");
    holder = undefined;
  });

  it("makes a write wait without blocking the event loop, then the write lands", async () => {
    await fx.open();
    const { id } = await fx.store!.create(defaultMetadata("/w", ""));
    const script = `const D=require(${JSON.stringify(createRequire(import.meta.url).resolve("better-sqlite3"))});const d=new D(process.argv[1]);d.exec("BEGIN IMMEDIATE");process.stdout.write("locked\\n");process.stdin.once("data",()=>{d.exec("COMMIT");process.exit(0)});`;
    holder = spawn(process.execPath, ["-e", script, fx.store!.path], { stdio: ["pipe", "pipe", "inherit"] });
    await once(holder.stdout!, "data");
    let landed = false;
    const write = fx.store!.append(id, message("user", [textItem("while locked")])).then(() => (landed = true));
    // Timers and reads keep running while the write waits for the lock.
    let ticks = 0;
    for (let i = 0; i < 5; i++) {
      await sleep(20);
      ticks++;
    }
    expect(ticks).toBe(5);
    expect((await fx.store!.info(id))!.metadata.message_count).toBe(0);
    expect(landed).toBe(false);
    holder.stdin!.write("go\n");
    await write;
    expect((await fx.store!.load(id))!.messages.map((m) => m.content)).toEqual([[{ type: "text", text: "while locked" }]]);
  });
});

describe("legacy JSONL import", () => {
  it("imports with goose's rules: id = file stem, existing ids skipped, empty files skipped, files stay", async () => {
    const src = join(fx.dir, "jsonl");
    await mkdir(src);
    for (const f of ["20250728_101010.jsonl", "20250801_093000.jsonl"]) await copyFile(join(fixturesDir, f), join(src, f));
    await writeFile(join(src, "empty.jsonl"), "");
    await fx.open(join(fx.dir, "db"));
    const first = await Promise.all((await jsonlFilesIn(src)).map((f) => importJsonlFile(fx.store!, f)));
    expect(first.map((r) => [r.id, r.result])).toEqual([
      ["20250728_101010", "imported"],
      ["20250801_093000", "imported"],
      ["empty", "empty"],
    ]);
    const again = await importJsonlFile(fx.store!, join(src, "20250728_101010.jsonl"));
    expect(again.result).toBe("exists");
    expect((await readdir(src)).sort()).toEqual(["20250728_101010.jsonl", "20250801_093000.jsonl", "empty.jsonl"]);
    const db = fx.goose(openLikeGoose(fx.store!.path));
    const rows: GooseMessageJson[] = expectGooseReadable(db, "20250728_101010");
    expect(rows).toHaveLength(4);
    const s = db.prepare("SELECT name, accumulated_total_tokens, extension_data FROM sessions WHERE id = '20250728_101010'").get() as Record<string, unknown>;
    expect(s).toMatchObject({ name: "Berlin weather", accumulated_total_tokens: 1520 });
    expect(JSON.parse(s.extension_data as string)).toEqual({ "todo.v0": { content: "check weather" } });
    // The next id of a day goose named a session after continues after it.
    expect((await fx.store!.list(10, "")).sessions.map((x) => x.id).sort()).toEqual(["20250728_101010", "20250801_093000"]);
  });

  it("runs once, when skein creates the database, as goose's does", async () => {
    await copyFile(join(fixturesDir, "20250728_101010.jsonl"), join(fx.dir, "20250728_101010.jsonl"));
    const s = await openSessionStore("goose-sqlite", fx.dir, silentLog, { syncEachMessage: false });
    expect(await s.count()).toBe(1);
    await s.close();
    await copyFile(join(fixturesDir, "20250801_093000.jsonl"), join(fx.dir, "20250801_093000.jsonl"));
    const again = await openSessionStore("goose-sqlite", fx.dir, silentLog, { syncEachMessage: false });
    expect(await again.count()).toBe(1);
    await again.close();
  });
});
