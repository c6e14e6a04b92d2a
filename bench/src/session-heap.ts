import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import { session as pb } from "@skein/proto";
import { call, openaiText, type FakeModelServer } from "@skein/testkit";
import { heapAfterGc, pool } from "./measure.js";
import { MiB, type Table } from "./table.js";

type Client = pb.SessionServiceClient;

// SKEIN_BENCH_HEAP_SCALE=2 doubles sessions and replies: growth that is bounded (compiled code, caps) does not double.
const SCALE = Math.max(1, Number(process.env.SKEIN_BENCH_HEAP_SCALE ?? "1") || 1);
const SESSIONS = 1_000 * SCALE;
const REPLIES_PER_SESSION = 10;
// As many sessions as SKEIN_MAX_LIVE_AGENTS (default 100): the warm-up fills the live agents and the replay budget.
const WARM_SESSIONS = 100;
const CONCURRENCY = 32;
const SPACES = ["old_space", "code_space", "large_object_space", "code_large_object_space", "new_space"] as const;

interface HeapPoint {
  readonly used: number;
  readonly spaces: ReadonlyMap<string, number>;
}

/**
 * Heap after many replies over many sessions, after GC, in three points:
 * cold (service just started), after a warm-up of 1,000 replies over 100
 * other sessions (the reply path compiled, live agents and replay budget
 * full), and after the measured replies. Growth since the warm-up is what
 * history costs; growth since cold adds the code V8 compiles on the way.
 */
export async function heap(client: Client, model: FakeModelServer): Promise<Table[]> {
  model.setFallback(() => ({ events: openaiText("Hello from the fake model.") }));
  const cold = measure("cold");
  await replies(client, await createSessions(client, WARM_SESSIONS));
  forgetRequests(model);
  const warm = measure("warm");
  const ids = await createSessions(client, SESSIONS);
  const t0 = performance.now();
  await replies(client, ids);
  const seconds = (performance.now() - t0) / 1000;
  ids.length = 0;
  forgetRequests(model);
  const after = measure("after");
  const total = SESSIONS * REPLIES_PER_SESSION;
  const mib = (n: number) => n / MiB;
  return [
    {
      title: "session: heap after many replies",
      columns: ["measure", "value"],
      rows: [
        ["replies", total],
        ["sessions", SESSIONS],
        [`replies/s (${CONCURRENCY} sessions in parallel)`, Math.round(total / seconds)],
        ["heap used cold (MiB, after GC)", mib(cold.used)],
        [`heap used after the warm-up: ${WARM_SESSIONS * REPLIES_PER_SESSION} replies over ${WARM_SESSIONS} other sessions (MiB, after GC)`, mib(warm.used)],
        ["heap used after the replies (MiB, after GC)", mib(after.used)],
        ["growth since the warm-up (MiB)", mib(after.used - warm.used)],
        ["growth since cold (MiB)", mib(after.used - cold.used)],
        ["growth per session since the warm-up (KiB)", (after.used - warm.used) / 1024 / SESSIONS],
      ],
      notes: [
        "replay windows of sessions nobody runs or watches are released past SKEIN_EVENT_BUFFER_TOTAL (default 4,096 events across all sessions); a session with neither a live agent nor a window keeps only its last seq (at most 100,000 of them)",
        "the fake model server's recorded requests and the bench's own session ids are dropped before each measurement: the figures are the service's (and this process's gRPC client's)",
      ],
    },
    {
      title: "session: heap by space after many replies (MiB used, after GC)",
      columns: ["space", "cold", "after warm-up", "after the replies", "growth since warm-up", "growth since cold"],
      rows: SPACES.map((s) => {
        const [c, w, a] = [cold, warm, after].map((p) => p.spaces.get(s) ?? 0) as [number, number, number];
        return [s, mib(c), mib(w), mib(a), mib(a - w), mib(a - c)];
      }),
      notes: ["code_space holds compiled machine code only; the bytecode, feedback vectors and deoptimisation data that come with compiling are in old_space"],
    },
  ];
}

function measure(label: string): HeapPoint {
  const used = heapAfterGc();
  const spaces = new Map(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  // SKEIN_BENCH_HEAP_SNAPSHOTS=dir writes cold/warm/after.heapsnapshot there (see heap-snapshot-diff.ts).
  const dir = process.env.SKEIN_BENCH_HEAP_SNAPSHOTS;
  if (dir) v8.writeHeapSnapshot(join(dir, `${label}.heapsnapshot`));
  return { used, spaces };
}

/** The fake model server (bench scaffolding in this process) keeps every request body; not the service's memory. */
function forgetRequests(model: FakeModelServer): void {
  model.requests.splice(0);
  model.completions.splice(0);
}

async function createSessions(client: Client, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(client, client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: tmpdir() }));
    ids.push(res.session!.id);
  }
  return ids;
}

/** Replies of one session run one after another (one run per session); sessions in parallel. */
async function replies(client: Client, ids: readonly string[]): Promise<void> {
  await pool(ids, CONCURRENCY, async (id) => {
    for (let r = 0; r < REPLIES_PER_SESSION; r++) {
      for await (const _ of client.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: `message ${r}` })));
    }
  });
}
