import { spawn } from "node:child_process";
import { once } from "node:events";
import { createRequire } from "node:module";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, openaiText } from "@skein/testkit";
import { pool } from "./measure.js";
import { withSessionService } from "./session-server.js";
import type { Table } from "./table.js";
import { defaultMetadata, message, textItem } from "@skein/goose-sessions/goose-format";
import { JsonlSessionStore } from "@skein/goose-sessions/jsonl";
import { SqliteSessionStore } from "@skein/goose-sessions/sqlite";

const STORES = ["goose-sqlite", "goose-jsonl"] as const;

const PERSIST_MESSAGES = 5_000;
const REPLY_SESSIONS = 100;
const REPLIES_PER_SESSION = 5;
const CONCURRENCY = 32;
const LOCK_MS = 3_000;
const LOCK_SESSIONS = 8;

export async function run(): Promise<Table[]> {
  const tables: Table[] = [];
  for (const [name, stage] of [
    ["persistence", persistence],
    ["replies/s", replies],
    ["lock held by another process", lockHeld],
  ] as const) {
    process.stderr.write(`[bench]   session-store: ${name}…\n`);
    tables.push(await stage());
  }
  return tables;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** (1) Persisting message 1 vs message 5,000 of one session, each store. */
async function persistence(): Promise<Table> {
  const text = "a typical assistant message of a few hundred characters. ".repeat(6);
  const rows: (string | number)[][] = [];
  await withSessionService("persist", {}, async ({ dir, log }) => {
    for (const [kind, opener] of [["goose-sqlite", SqliteSessionStore], ["goose-jsonl", JsonlSessionStore]] as const) {
      const store = await opener.open(join(dir, `persist-${kind}`), log, { syncEachMessage: false });
      const { id } = await store.create(defaultMetadata("/tmp", "persist bench"));
      const times: number[] = [];
      for (let i = 0; i < PERSIST_MESSAGES; i++) {
        const t = performance.now();
        await store.append(id, message(i % 2 ? "assistant" : "user", [textItem(text)]));
        times.push(performance.now() - t);
      }
      const t = performance.now();
      await store.updateMetadata(id, (m) => ({ ...m, total_tokens: 1, accumulated_total_tokens: 1 }));
      const metaMs = performance.now() - t;
      await store.close();
      rows.push([kind, times[0]!, median(times.slice(1, 101)), median(times.slice(-100)), times.at(-1)!, metaMs]);
    }
  });
  return {
    title: "session-store: time to persist a message (ms)",
    columns: ["store", "message 1", "2..101 median", `${PERSIST_MESSAGES - 99}..${PERSIST_MESSAGES} median`, `message ${PERSIST_MESSAGES}`, `metadata update at ${PERSIST_MESSAGES}`],
    rows,
    notes: [
      "goose-sqlite: one BEGIN IMMEDIATE transaction per message (bump updated_at, insert the row), WAL, synchronous=NORMAL (SKEIN_FSYNC_EACH_MESSAGE=false)",
      "goose-jsonl: one appended line per message; the metadata update rewrites the file (temp, fsync, rename), sqlite updates one row",
    ],
  };
}

/** (2) Replies per second through the whole service, each store, two rounds in alternating order (the machine's load drifts). */
async function replies(): Promise<Table> {
  const rows: (string | number)[][] = [];
  for (const store of [...STORES, ...[...STORES].reverse()]) {
    await withSessionService(`replies-${store}`, { env: { SKEIN_SESSION_STORE: store } }, async ({ model, client }) => {
      model.setFallback(() => ({ events: openaiText("Hello from the fake model.", { pieces: 5 }) }));
      const ids: string[] = [];
      for (let i = 0; i < REPLY_SESSIONS; i++) ids.push((await createSession(client)).id);
      const t0 = performance.now();
      await pool(ids, CONCURRENCY, async (id) => {
        for (let r = 0; r < REPLIES_PER_SESSION; r++) await drain(client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: `message ${r}` })));
      });
      const seconds = (performance.now() - t0) / 1000;
      rows.push([`${store} (round ${rows.length < STORES.length ? 1 : 2})`, REPLY_SESSIONS * REPLIES_PER_SESSION, seconds, Math.round((REPLY_SESSIONS * REPLIES_PER_SESSION) / seconds)]);
    });
  }
  return {
    title: "session-store: replies per second by store",
    columns: ["store", "replies", "seconds", "replies/s"],
    rows,
    notes: [`${REPLY_SESSIONS} sessions × ${REPLIES_PER_SESSION} replies, ${CONCURRENCY} sessions in parallel; each reply persists 2 messages and updates the metadata once`],
  };
}

/**
 * (3) Event-loop delay of the service while another process holds sessions.db's
 * write lock (BEGIN IMMEDIATE) for 3 s, with replies streaming in 8 sessions,
 * against 3 s without the lock.
 */
async function lockHeld(): Promise<Table> {
  return withSessionService("lock", { env: { SKEIN_SESSION_STORE: "goose-sqlite" } }, async ({ dir, model, client }) => {
    model.setFallback(() => ({ events: openaiText("x".repeat(200), { pieces: 100 }), delayMs: 5 }));
    const ids: string[] = [];
    for (let i = 0; i < LOCK_SESSIONS; i++) ids.push((await createSession(client)).id);
    const counts = { deltas: 0, messages: 0 };
    let stop = false;
    const loops = ids.map(async (id) => {
      while (!stop) await drain(client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: "go" })), counts);
    });
    await new Promise((r) => setTimeout(r, 1_000));
    const window = async (hold: boolean) => {
      const h = monitorEventLoopDelay({ resolution: 10 });
      const start = { ...counts };
      let firstCommitAfterMs: number | undefined;
      if (hold) {
        const child = spawn(process.execPath, ["-e", HOLDER, join(dir, "sessions", "sessions.db"), String(LOCK_MS)], { stdio: ["ignore", "pipe", "inherit"] });
        await once(child.stdout, "data");
        h.enable();
        const during = { ...counts };
        await once(child, "exit");
        h.disable();
        const lockEnd = { ...counts };
        const released = performance.now();
        while (counts.messages === lockEnd.messages) await new Promise((r) => setTimeout(r, 1));
        firstCommitAfterMs = performance.now() - released;
        return { h, deltas: lockEnd.deltas - during.deltas, messages: lockEnd.messages - during.messages, firstCommitAfterMs };
      }
      h.enable();
      await new Promise((r) => setTimeout(r, LOCK_MS));
      h.disable();
      return { h, deltas: counts.deltas - start.deltas, messages: counts.messages - start.messages, firstCommitAfterMs };
    };
    const free = await window(false);
    const held = await window(true);
    stop = true;
    await Promise.all(loops);
    const ms = (ns: number) => ns / 1e6;
    const row = (name: string, w: typeof free) => [name, ms(w.h.percentile(50)), ms(w.h.percentile(99)), ms(w.h.max), w.deltas, w.messages, w.firstCommitAfterMs ?? "-"];
    return {
      title: "session-store: event-loop delay while another process holds the write lock",
      columns: ["3 s window", "delay p50 ms", "delay p99 ms", "delay max ms", "text deltas streamed", "messages committed", "first commit after release ms"],
      rows: [row("no other writer", free), row("another process holds BEGIN IMMEDIATE", held)],
      notes: [
        `${LOCK_SESSIONS} sessions replying continuously (100 text deltas per reply, 5 ms apart), service and client in one process`,
        "busy_timeout 0 + retries with backoff (2 → 100 ms, up to 30 s) on timers: waiting writes never block the event loop",
      ],
    };
  });
}

/** Holds the write lock of the database in argv[1] for argv[2] ms, then commits. */
const HOLDER = `const D=require(${JSON.stringify(createRequire(fileURLToPath(new URL("../../packages/goose-sessions/package.json", import.meta.url))).resolve("better-sqlite3"))});
const d=new D(process.argv[1]);d.exec("BEGIN IMMEDIATE");process.stdout.write("locked\\n");
setTimeout(()=>{d.exec("COMMIT");d.close();process.exit(0)},Number(process.argv[2]));`;

async function createSession(client: pb.SessionServiceClient): Promise<pb.Session> {
  return (await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(client, client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: "/tmp" }))).session!;
}

function drain(stream: ClientReadableStream<pb.ReplyResponse>, counts?: { deltas: number; messages: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on("data", (e: pb.ReplyResponse) => {
      if (!counts) return;
      if (e.event?.$case === "textDelta") counts.deltas++;
      else if (e.event?.$case === "message") counts.messages++;
    });
    stream.on("end", () => resolve());
    stream.on("error", reject);
  });
}
