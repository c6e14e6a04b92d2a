import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { waitUntil } from "@skein/host";
import { call, openaiText, openaiToolCalls } from "@skein/testkit";
import { countProcesses, heapAfterGc, pool } from "./measure.js";
import { withSessionService } from "./session-server.js";
import { MiB, type Table } from "./table.js";

/**
 * Soak of the live-agent bounds: many sessions, each with its own stdio MCP
 * extension, many replies each (every reply calls the extension's tool once),
 * under a small SKEIN_MAX_LIVE_AGENTS. The service runs in this process so its
 * heap can be measured after GC; extension processes are counted in /proc.
 */
const SESSIONS = 1_000;
const REPLIES_PER_SESSION = 10;
const MAX_LIVE = 50;
// Below the cap, so no call meets RESOURCE_EXHAUSTED (every session's replies run one after another).
const CONCURRENCY = 16;

/**
 * A minimal stdio MCP server (newline-delimited JSON-RPC, no SDK): one `ping`
 * tool. The real server-everything takes ~0.5 s of CPU to start, too heavy to
 * start thousands of times on two cores; this one starts in a bare node.
 */
const TINY_MCP = `
const rl = require("node:readline").createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
rl.on("line", (line) => {
  let m; try { m = JSON.parse(line); } catch { return; }
  if (m.id === undefined) return;
  if (m.method === "initialize") send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "tiny", version: "1" } } });
  else if (m.method === "tools/list") send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "ping", description: "answers pong", inputSchema: { type: "object", properties: {} } }] } });
  else if (m.method === "tools/call") send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: "pong" }] } });
  else send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found" } });
});
rl.on("close", () => process.exit(0));
`;

export async function run(): Promise<Table[]> {
  const marker = `skein-soak-${process.pid}`;
  const script = {
    // Each reply: one tool call, then the answer once the tool result is in.
    fallback: (body: Record<string, unknown>) => {
      const last = (body.messages as { role: string }[]).at(-1);
      return { events: last?.role === "tool" ? openaiText("pong received") : openaiToolCalls([{ id: `call_${Math.random().toString(36).slice(2)}`, name: "tiny__ping", args: {} }]) };
    },
  };
  const env = { SKEIN_MAX_LIVE_AGENTS: String(MAX_LIVE), SKEIN_EXTENSION_KILL_GRACE_MS: "1000" };
  return withSessionService("session-soak", { env, model: script }, async ({ dir, model, client }) => {
    const server_js = join(dir, "tiny-mcp.cjs");
    writeFileSync(server_js, TINY_MCP);
    // What the service says of itself over its own API (GetStats), as any client would read it.
    const stats = () => call<pb.GetStatsRequest, pb.GetStatsResponse>(client, client.getStats, pb.GetStatsRequest.fromPartial({}));
    let peak = 0;
    const sampler = setInterval(() => void stats().then((st) => (peak = Math.max(peak, st.liveAgents))), 20);
    try {
      const heapBefore = heapAfterGc();
      const rssBefore = process.memoryUsage().rss;
      const t0 = performance.now();
      let replies = 0;
      let failures = 0;
      await pool(Array.from({ length: SESSIONS }, (_, i) => i), CONCURRENCY, async () => {
        const s = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(client, client.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: dir, extensions: [{ name: "tiny", cmd: process.execPath, args: [server_js, marker] }] }));
        peak = Math.max(peak, (await stats()).liveAgents);
        for (let r = 0; r < REPLIES_PER_SESSION; r++) {
          const reason = await finishOf(client.reply(pb.ReplyRequest.fromPartial({ sessionId: s.session!.id, text: `reply ${r}` })));
          if (reason === pb.FinishReason.FINISH_REASON_STOP) replies++;
          else failures++;
        }
      });
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, (await stats()).liveAgents);
      // Evicted agents' processes end asynchronously; give the last ones their grace period.
      let processes = (await stats()).extensionProcesses;
      await waitUntil(() => countProcesses(marker) === processes, 5_000, 50);
      const agents = await stats();
      processes = agents.extensionProcesses;
      const alive = countProcesses(marker);
      // The fake model server (bench scaffolding in this process) keeps every request body; not the service's memory.
      model.requests.splice(0);
      model.completions.splice(0);
      const heapAfter = heapAfterGc();
      const rssAfter = process.memoryUsage().rss;
      return [
        {
          title: `session-soak: ${SESSIONS.toLocaleString("en-US")} sessions × ${REPLIES_PER_SESSION} replies, one extension each, SKEIN_MAX_LIVE_AGENTS=${MAX_LIVE}`,
          columns: ["measure", "value"],
          rows: [
            ["replies finished (stop)", replies],
            ["replies not finished with stop", failures],
            ["wall time (s)", seconds],
            ["peak live agents", peak],
            ["live agents at the end", agents.liveAgents],
            ["extension processes alive at the end (/proc)", alive],
            ["extension processes of live agents (GetStats)", agents.extensionProcesses],
            ["evictions", agents.evictions],
            ["heap used before (MiB, after GC)", heapBefore / MiB],
            ["heap used after (MiB, after GC)", heapAfter / MiB],
            ["RSS before (MiB)", rssBefore / MiB],
            ["RSS after (MiB)", rssAfter / MiB],
          ],
          notes: [
            `each reply = 2 streamed model calls (tool call, answer) + 1 tool call to the session's extension; ${CONCURRENCY} sessions at a time`,
            "extension: a minimal stdio MCP server (newline JSON-RPC, one tool) in a bare node process, not server-everything (too heavy to start 1,000 times)",
            `alive at the end must equal live agents × 1 extension (${agents.liveAgents})`,
            "heap after: the fake model server's recorded request bodies are dropped first; RSS includes freed heap not yet returned to the OS",
          ],
        },
      ];
    } finally {
      clearInterval(sampler);
    }
  });
}


async function finishOf(stream: AsyncIterable<pb.ReplyResponse>): Promise<pb.FinishReason | undefined> {
  let reason: pb.FinishReason | undefined;
  for await (const e of stream) if (e.event?.$case === "finished") reason = e.event.value.reason;
  return reason;
}




