import { tmpdir } from "node:os";
import { Server, ServerCredentials, status, type ServerWritableStream, type ServiceError } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, connect, openaiText, type FakeModelServer } from "@skein/testkit";
import { heapAfterGc, pool } from "./measure.js";
import { withSessionService } from "./session-server.js";
import { MiB, type Table } from "./table.js";

type Client = pb.SessionServiceClient;

const DELTAS_PER_REPLY = 2_000;
const THROUGHPUT_REPLIES = 10;
const HEAP_SESSIONS = 1_000;
const HEAP_REPLIES_PER_SESSION = 10;
const HANGUP_REPLIES = 200;
const CONCURRENCY = 32;

export async function run(): Promise<Table[]> {
  return withSessionService("session", {}, async ({ model, client }) => {
    const stages: Array<[string, () => Promise<Table>]> = [
      ["throughput", () => throughput(client, model)],
      ["heap", () => heap(client, model)],
      ["hang-ups", () => hangups(client, model)],
    ];
    const tables: Table[] = [];
    // SKEIN_BENCH_SESSION_STAGES=heap (comma-separated) runs only those stages.
    const chosen = process.env.SKEIN_BENCH_SESSION_STAGES?.split(",");
    for (const [name, stage] of stages.filter(([n]) => !chosen || chosen.includes(n))) {
      process.stderr.write(`[bench]   session: ${name}…\n`);
      tables.push(await stage());
    }
    return tables;
  });
}

/** (1) Events per second through Reply vs a bare grpc-js server stream of as many events. */
async function throughput(client: Client, model: FakeModelServer): Promise<Table> {
  model.setFallback(() => ({ events: openaiText("x".repeat(DELTAS_PER_REPLY), { pieces: DELTAS_PER_REPLY }) }));
  const id = (await create(client)).id;
  await readAll(client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: "warm up" })));
  let events = 0;
  const t0 = performance.now();
  for (let i = 0; i < THROUGHPUT_REPLIES; i++) events += await readAll(client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: `reply ${i}` })));
  const skeinMs = performance.now() - t0;

  const raw = await rawServer(events / THROUGHPUT_REPLIES);
  const rawClient = connect(pb.SessionServiceClient, `127.0.0.1:${raw.port}`);
  await readAll(rawClient.reply(pb.ReplyRequest.fromPartial({ sessionId: "warm" })));
  let rawEvents = 0;
  const t1 = performance.now();
  for (let i = 0; i < THROUGHPUT_REPLIES; i++) rawEvents += await readAll(rawClient.reply(pb.ReplyRequest.fromPartial({ sessionId: "raw" })));
  const rawMs = performance.now() - t1;
  raw.server.forceShutdown();

  const skeinRate = events / (skeinMs / 1000);
  const rawRate = rawEvents / (rawMs / 1000);
  return {
    title: "session: Reply event throughput",
    columns: ["path", "events", "seconds", "events/s"],
    rows: [
      ["skein Reply (fake OpenAI SSE → agent loop → store → gRPC)", events, skeinMs / 1000, Math.round(skeinRate)],
      ["bare grpc-js server stream, same events", rawEvents, rawMs / 1000, Math.round(rawRate)],
      ["ratio skein / bare", "", "", `${((skeinRate / rawRate) * 100).toFixed(0)} %`],
    ],
    notes: [`${THROUGHPUT_REPLIES} replies of ${DELTAS_PER_REPLY} text deltas each, one session, client and servers in one process`],
  };
}

/** (2) Heap after many replies over many sessions, after GC. */
async function heap(client: Client, model: FakeModelServer): Promise<Table> {
  model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  const before = heapAfterGc();
  const ids: string[] = [];
  for (let i = 0; i < HEAP_SESSIONS; i++) ids.push((await create(client)).id);
  const t0 = performance.now();
  const replies = HEAP_SESSIONS * HEAP_REPLIES_PER_SESSION;
  // Replies of one session run one after another (one run per session); sessions in parallel.
  await pool(ids, CONCURRENCY, async (id) => {
    for (let r = 0; r < HEAP_REPLIES_PER_SESSION; r++) await readAll(client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: `message ${r}` })));
  });
  const seconds = (performance.now() - t0) / 1000;
  // The fake model server (bench scaffolding in this process) keeps every request body; not the service's memory.
  model.requests.splice(0);
  model.completions.splice(0);
  const after = heapAfterGc();
  return {
    title: "session: heap after many replies",
    columns: ["measure", "value"],
    rows: [
      ["replies", replies],
      ["sessions", HEAP_SESSIONS],
      [`replies/s (${CONCURRENCY} sessions in parallel)`, Math.round(replies / seconds)],
      ["heap used before (MiB, after GC)", before / MiB],
      ["heap used after (MiB, after GC)", after / MiB],
      ["growth per session (KiB)", (after - before) / 1024 / HEAP_SESSIONS],
    ],
    notes: [
      "replay windows of sessions nobody runs or watches are released past SKEIN_EVENT_BUFFER_TOTAL (default 4,096 events across all sessions); what stays per idle session is its last seq",
    ],
  };
}

/** (3) Provider connections left after replies whose clients hung up after the first event. */
async function hangups(client: Client, model: FakeModelServer): Promise<Table> {
  model.setFallback(() => ({ events: openaiText("a reply that keeps streaming for a while", { pieces: 20 }), delayMs: 5 }));
  const ids: string[] = [];
  for (let i = 0; i < HANGUP_REPLIES; i++) ids.push((await create(client)).id);
  // Runs go on after their client hangs up, so at most SKEIN_MAX_LIVE_AGENTS
  // of them are busy at once; a refused Reply is retried, as its error says.
  let retries = 0;
  await pool(ids, 50, async (id) => {
    for (;;) {
      const stream = client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: "hang up on me" }));
      let first = true;
      const refused = await new Promise<boolean>((resolve) => {
        stream.once("data", () => resolve(false));
        stream.once("end", () => resolve(false));
        stream.on("error", (err: ServiceError) => first && resolve(err.code === status.RESOURCE_EXHAUSTED));
      });
      first = false;
      stream.cancel();
      if (!refused) return;
      retries++;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  const running = async () => (await call<pb.GetStatsRequest, pb.GetStatsResponse>(client, client.getStats, pb.GetStatsRequest.fromPartial({}))).runningReplies;
  const duringRuns = await running();
  const deadline = Date.now() + 60_000;
  while ((await running()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const inFlight = model.activeResponses;
  const openNow = model.openConnections();
  await new Promise((r) => setTimeout(r, 1_500));
  const openIdle = model.openConnections();
  let complete = 0;
  for (const id of ids) {
    const res = await call<pb.GetSessionRequest, pb.GetSessionResponse>(client, client.getSession, pb.GetSessionRequest.fromPartial({ sessionId: id, includeMessages: false }));
    if (res.session!.messageCount === 2) complete++;
  }
  return {
    title: "session: provider connections after clients hang up",
    columns: ["measure", "value"],
    rows: [
      ["replies whose client hung up after the first event", HANGUP_REPLIES],
      ["Reply calls refused while SKEIN_MAX_LIVE_AGENTS (default 100) runs were busy, then retried", retries],
      ["runs still going right after the last hang-up", duringRuns],
      ["runs finished and persisted (user + assistant message)", complete],
      ["provider requests in flight once all runs finished", inFlight],
      ["provider TCP connections open then (idle keep-alive)", openNow],
      ["provider TCP connections open 1.5 s later (keep-alive timeout 1 s)", openIdle],
    ],
  };
}

async function create(client: Client): Promise<pb.Session> {
  return (await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(client, client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }))).session!;
}

function readAll(stream: AsyncIterable<unknown>): Promise<number> {
  return (async () => {
    let n = 0;
    for await (const _ of stream) n++;
    return n;
  })();
}



/** A bare grpc-js server streaming `count` text deltas per call, with backpressure. */
async function rawServer(count: number): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(pb.SessionServiceService, {
    reply: async (call: ServerWritableStream<pb.ReplyRequest, pb.ReplyResponse>) => {
      for (let i = 1; i <= count; i++) {
        const ok = call.write(pb.ReplyResponse.fromPartial({ seq: i, requestId: "raw", sessionId: "raw", event: { $case: "textDelta", value: { text: "x" } } }));
        if (!ok) await new Promise((r) => call.once("drain", r));
      }
      call.end();
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}
