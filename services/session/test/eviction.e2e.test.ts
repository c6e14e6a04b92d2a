import { mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, collect, gate, openaiText, openaiToolCalls, processesMarked, rejection, testMarker, type TestMarker } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createWith, listTools, markedFixtureExt, stats } from "./support/extensions.js";
import { STORES } from "./support/stored.js";
import { eventually, finishReason, isFinished, reply, readUntil, startHarness, watch, type Harness } from "./support/harness.js";

const STOP = pb.FinishReason.FINISH_REASON_STOP;

/** Each session's fixture gets its own marker argument, so /proc tells whose processes are alive (also once orphaned). */
const marked = (marker: TestMarker) => markedFixtureExt(marker);
const alive = (marker: TestMarker) => processesMarked(marker).length;

describe.each(STORES)("idle eviction on %s", (store) => {
  let h: Harness;
  let work: string;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_SESSION_IDLE_TIMEOUT: "1s", SKEIN_EXTENSION_KILL_GRACE_MS: "500" }, { store });
    work = await mkdtemp(join(tmpdir(), "skein-work-"));
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("ends an idle agent's extension processes by timer, and the session reloads with its extensions and continues", async () => {
    const marker = testMarker("idle");
    const s = await createWith(h.client, work, [marked(marker)]);
    expect(alive(marker)).toBe(1);
    const w = watch(h.client, s.id, 0);
    w.on("error", () => undefined);
    expect(finishReason(await collect(reply(h.client, s.id, "first")))).toBe(STOP);
    const lastSeq = (await call(h.client, h.client.getSession, pb.GetSessionRequest.fromPartial({ sessionId: s.id }))).session!.lastSeq;

    // Nobody calls: the timer alone evicts it.
    await eventually(() => stats(h.client), (st) => st.evictions >= 1 && st.liveAgents === 0);
    expect(alive(marker)).toBe(0);

    // The watcher connected before the eviction still follows the next run.
    const followed = readUntil(w, (e) => isFinished(e) && e.seq > lastSeq);
    h.model.enqueue({ events: openaiToolCalls([{ id: "call_pid", name: "fixture__pid", args: {} }]) }, { events: openaiText("Back again.") });
    const events = await collect(reply(h.client, s.id, "second"));
    expect(finishReason(events)).toBe(STOP);
    expect(events[0]!.seq).toBeGreaterThan(lastSeq);
    const seen = await followed;
    expect(seen.at(-1)!.seq).toBe(events.at(-1)!.seq);
    w.cancel();
    const pidMsg = events.find((e) => e.event?.$case === "message" && e.event.value.message!.content[0]!.kind?.$case === "toolResponse")!;
    expect(pidMsg.event?.$case === "message" && pidMsg.event.value.message!.content[0]!.kind).toMatchObject({ $case: "toolResponse", value: { error: "" } });
    expect(alive(marker)).toBe(1);
    expect((await listTools(h.client, s.id)).map((t) => t.name)).toContain("fixture__pid");
  });
});

describe.each(STORES)("LRU cap on %s", (store) => {
  let h: Harness;
  let work: string;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_MAX_LIVE_AGENTS: "2", SKEIN_EXTENSION_KILL_GRACE_MS: "500" }, { store });
    work = await mkdtemp(join(tmpdir(), "skein-work-"));
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("evicts the least recently used idle agent, never a busy one, and refuses when all are busy", async () => {
    const [ma, mb, mc] = ["a", "b", "c"].map((x) => testMarker(`lru-${x}`));
    const a = await createWith(h.client, work, [marked(ma!)]);
    const b = await createWith(h.client, work, [marked(mb!)]);
    // a is the least recently used but busy: a held reply.
    const held = gate();
    h.model.enqueue({ events: openaiText("slow answer", { pieces: 2 }), holdAfter: 2, hold: held.promise });
    const busy = reply(h.client, a.id, "take your time");
    await readUntil(busy, (e) => e.event?.$case === "textDelta");
    const c = await createWith(h.client, work, [marked(mc!)]);
    await eventually(() => alive(mb!), (n) => n === 0);
    expect([alive(ma!), alive(mc!)]).toEqual([1, 1]);
    expect(await stats(h.client)).toMatchObject({ liveAgents: 2, runningReplies: 1, evictions: 1 });

    // a busy, c busy: a third agent does not fit.
    const held2 = gate();
    h.model.enqueue({ events: openaiText("also slow", { pieces: 2 }), holdAfter: 2, hold: held2.promise });
    const busyC = reply(h.client, c.id, "you too");
    await readUntil(busyC, (e) => e.event?.$case === "textDelta");
    const full = await rejection(call(h.client, h.client.listTools, pb.ListToolsRequest.fromPartial({ sessionId: b.id })));
    expect(full.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(full.details).toMatch(/all 2 live agents are busy with replies \(SKEIN_MAX_LIVE_AGENTS=2\)/);

    held.release();
    held2.release();
    expect(finishReason(await readUntil(busy, isFinished))).toBe(STOP);
    expect(finishReason(await readUntil(busyC, isFinished))).toBe(STOP);
    // Now b reloads; a (least recently used) goes.
    expect((await listTools(h.client, b.id)).length).toBe(7);
    await eventually(() => alive(ma!), (n) => n === 0);
    expect([alive(mb!), alive(mc!)]).toEqual([1, 1]);
    expect((await stats(h.client)).evictions).toBe(2);
  });
});

describe.each(STORES)("kill -9 with extensions running on %s", (store) => {
  let h: Harness;
  let work: string;
  const marker = testMarker("orphan");
  beforeAll(async () => {
    h = await startHarness({ SKEIN_EXTENSION_KILL_GRACE_MS: "500" }, { store });
    work = await mkdtemp(join(tmpdir(), "skein-work-"));
  });
  afterEach(() => {
    // Whatever happens, no fixture of this test outlives it.
    for (const pid of processesMarked(marker)) process.kill(pid, "SIGKILL");
  });
  afterAll(async () => {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  });

  it("leaves no extension process once the service has started again", async () => {
    // FIXTURE_STAY: the fixture outlives its stdin closing, as many real servers do.
    const ext = pb.ExtensionConfig.fromPartial({ ...marked(marker), env: { FIXTURE_STAY: "1" } });
    await createWith(h.client, work, [ext]);
    await createWith(h.client, work, [{ ...ext, name: "second" }]);
    expect(alive(marker)).toBe(2);
    expect(await readdir(join(h.sessionsDir, ".skein-extensions"))).toHaveLength(1);
    await h.svc.stop("SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    expect(alive(marker)).toBe(2);
    await h.restart();
    expect(alive(marker)).toBe(0);
    expect(h.svc.logs.some((l) => l.msg === "ended extension processes left by a previous instance" && l.processGroups === 2)).toBe(true);
  });
});
