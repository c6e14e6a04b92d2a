import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { session as pb } from "@skein/proto";
import { call, collect, mountTmpfs, openaiText, rejection, startService, tmpfsUnavailable, type Tmpfs } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildFreshGooseDb } from "./support/goose-db.js";
import { createSession, finishReason, getSession, reply, startHarness, type Harness } from "./support/harness.js";

/**
 * Issue 20 on the default store (goose's sessions.db) with real faults: the
 * sessions directory on a full tmpfs (ENOSPC from the kernel), remounted
 * read-only (EROFS), and a sessions.db that is not SQLite. Calls answer with
 * the status the fault has, a Reply names it in its `error` event before
 * `finished`, nothing written before is lost and the database passes
 * `PRAGMA integrity_check`. The tmpfs cases need root.
 */
const { FINISH_REASON_STOP: STOP, FINISH_REASON_ERROR: ERROR } = pb.FinishReason;
const noTmpfs = tmpfsUnavailable();
if (noTmpfs) console.warn(`storage-faults: full-disk and read-only cases skipped: ${noTmpfs}`);

const createOn = (h: Harness) => call(h.client, h.client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }));
const errorEvent = (events: pb.ReplyResponse[]) => events.flatMap((e) => (e.event?.$case === "error" ? [e.event.value] : []));

function integrity(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    return (db.pragma("integrity_check", { simple: true }) as string);
  } finally {
    db.close();
  }
}

describe.skipIf(noTmpfs !== undefined)("sessions.db on a tmpfs", () => {
  let fs: Tmpfs;
  let h: Harness;
  beforeAll(async () => {
    fs = mountTmpfs(8 * 1024 * 1024);
    h = await startHarness({}, { store: "goose-sqlite", sessionsDir: join(fs.dir, "sessions") });
  });
  afterEach(() => fs?.free());
  afterAll(async () => {
    await h?.close();
    fs?.unmount();
  });

  it("a full disk: CreateSession RESOURCE_EXHAUSTED, Reply's error event STORE_FULL before finished; all works again once space returns, nothing lost", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("stored before the disk filled") });
    expect(finishReason(await collect(reply(h.client, s.id, "hello")))).toBe(STOP);
    const before = await getSession(h.client, s.id);
    const dbPath = join(h.sessionsDir, "sessions.db");

    fs.fill();
    const err = await rejection(createOn(h));
    expect(err.code, err.details).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details).toContain(`no space left for the session store at ${dbPath}`);

    // No answer queued: the run stops at storing the user's message (a model call meanwhile gets the fallback).
    const events = await collect(reply(h.client, s.id, "this cannot be stored"));
    expect(errorEvent(events)).toEqual([expect.objectContaining({ code: "STORE_FULL", message: expect.stringContaining(`no space left for the session store at ${dbPath}`) })]);
    expect(events.at(-1)?.event?.$case).toBe("finished");
    expect(finishReason(events)).toBe(ERROR);
    // Reads still answer while the disk is full.
    expect((await getSession(h.client, s.id)).messages).toEqual(before.messages);

    fs.free();
    h.model.enqueue({ events: openaiText("stored after space returned") });
    expect(finishReason(await collect(reply(h.client, s.id, "again")))).toBe(STOP);
    expect((await createOn(h)).session?.id).toBeTruthy();
    const after = await getSession(h.client, s.id);
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
    expect(after.messages.at(-1)?.content[0]?.kind).toMatchObject({ $case: "text", value: { text: "stored after space returned" } });
    expect(integrity(dbPath)).toBe("ok");
  });

});

/** A read-only remount needs no file open for writing: sessions.db keeps one, the JSONL store only while a reply writes. */
describe.skipIf(noTmpfs !== undefined)("JSONL sessions directory on a tmpfs remounted read-only", () => {
  let fs: Tmpfs;
  let h: Harness;
  beforeAll(async () => {
    fs = mountTmpfs(8 * 1024 * 1024);
    h = await startHarness({}, { store: "goose-jsonl", sessionsDir: join(fs.dir, "sessions") });
  });
  afterAll(async () => {
    fs?.readOnly(false);
    await h?.close();
    fs?.unmount();
  });

  it("CreateSession FAILED_PRECONDITION naming the directory, Reply's error event STORE_READ_ONLY; all works again once writable, nothing lost", async () => {
    const s = await createSession(h.client);
    h.model.enqueue({ events: openaiText("stored before the remount") });
    expect(finishReason(await collect(reply(h.client, s.id, "hello")))).toBe(STOP);
    const before = await getSession(h.client, s.id);

    fs.readOnly(true);
    try {
      const err = await rejection(createOn(h));
      expect(err.code, err.details).toBe(status.FAILED_PRECONDITION);
      expect(err.details).toContain(`the session store at ${h.sessionsDir} cannot be written`);
      const events = await collect(reply(h.client, s.id, "this cannot be stored"));
      expect(errorEvent(events).map((e) => e.code)).toEqual(["STORE_READ_ONLY"]);
      expect(finishReason(events)).toBe(ERROR);
    } finally {
      fs.readOnly(false);
    }
    h.model.enqueue({ events: openaiText("stored after the remount") });
    expect(finishReason(await collect(reply(h.client, s.id, "again")))).toBe(STOP);
    const after = await getSession(h.client, s.id);
    expect(after.messages.slice(0, before.messages.length)).toEqual(before.messages);
    expect(after.messages.at(-1)?.content[0]?.kind).toMatchObject({ $case: "text", value: { text: "stored after the remount" } });
  });
});

describe("start-up on a store that cannot be used: exit 2, one line naming the file, the file unchanged", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "skein-bad-store-"));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  async function refused(sessionsDir: string): Promise<{ code: number | null; lines: string[] }> {
    const svc = await startService("session", { HOME: root, SKEIN_SESSIONS_DIR: sessionsDir, SKEIN_SESSION_STORE: "goose-sqlite" }, { expectExit: true });
    const { code } = await svc.exited;
    return { code, lines: [...svc.output, ...svc.logs.filter((l) => (l.level ?? 0) >= 40).map((l) => JSON.stringify(l))].filter((l) => l.trim() !== "") };
  }
  const digest = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

  it("a sessions.db that is not a SQLite database", async () => {
    const dir = join(root, "damaged");
    const db = join(dir, "sessions.db");
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    writeFileSync(db, "this is a text file, not a goose session database\n".repeat(200));
    const sum = digest(db);
    const { code, lines } = await refused(dir);
    expect(code).toBe(2);
    expect(lines).toEqual([`skein session: ${db} is not a SQLite database (SQLITE_NOTADB); it was left unchanged`]);
    expect(digest(db)).toBe(sum);
    expect(readdirSync(dir)).toEqual(["sessions.db"]);
  });

  it.skipIf(noTmpfs !== undefined)("a sessions.db on a read-only file system", async () => {
    const fs = mountTmpfs(4 * 1024 * 1024);
    try {
      const db = join(fs.dir, "sessions.db");
      buildFreshGooseDb(db).close();
      const sum = digest(db);
      fs.readOnly(true);
      const { code, lines } = await refused(fs.dir);
      expect(code).toBe(2);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^skein session: ${db.replaceAll(/[./]/g, "\\$&")} is read-only \\(SQLITE_`));
      expect(digest(db)).toBe(sum);
    } finally {
      fs.unmount();
    }
  });
});
