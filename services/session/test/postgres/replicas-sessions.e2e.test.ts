import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { session as pb } from "@skein/proto";
import { call, openaiText, openaiToolCalls, repoRoot, type SessionReplica } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { fixtureExt } from "../support/extensions.js";
import { expectGooseReadable, openLikeGoose } from "../support/goose-db.js";
import { A, B, C, c, itLogsNoPassword, model, useReplicaCluster, work } from "../support/replica-cluster.js";
import { createOn, expectEventually, finishedReason, gate, getOn, hasFinished, kind, lastSeqOf, listOn, replyOn, say, statsOn } from "../support/replicas.js";

/**
 * Issue 11's contract across three real session service processes (A, B, C)
 * on one real PostgreSQL: one session seen, run and counted from every
 * replica, and taken out of the cluster and back. Every call of a scenario
 * goes to a different replica than the run's. Live events: replicas-events;
 * cancel and delete: replicas-cancel; faults: replicas-kill, replicas-takeover,
 * replicas-lifecycle.
 */
const { FINISH_REASON_STOP: STOP } = pb.FinishReason;

useReplicaCluster("steady");

const stripVolatile = (r: pb.GetSessionResponse) => ({ ...r, session: { ...r.session!, updatedAt: undefined } });

describe("one session seen from every replica", () => {
  it("CreateSession on A, Reply on B, GetSession and ListSessions on C: the same session and messages, in goose's message model", async () => {
    const s = await createOn(A.client, work, [fixtureExt("fx")]);
    const tag = model.tag({ events: openaiToolCalls([{ id: "call_pid", name: "fx__pid", args: {} }]) }, { events: openaiText("The pid is known.") });
    const run = replyOn(B.client, s.id, say(tag, "what is your pid?"));
    await run.until(hasFinished);
    expect(finishedReason(run.events)).toBe(STOP);

    const seen = await Promise.all([A, B, C].map((r) => getOn(r.client, s.id)));
    for (const r of seen.slice(1)) expect(stripVolatile(r)).toEqual(stripVolatile(seen[0]!));
    const got = seen[2]!;
    expect(got.session!.messageCount).toBe(4);
    expect(got.session!.lastSeq).toBe(lastSeqOf(run.events));
    expect(got.messages.map((m) => [m.role, m.content.map((x) => x.kind?.$case)])).toEqual([
      [pb.Role.ROLE_USER, ["text"]],
      [pb.Role.ROLE_ASSISTANT, ["toolRequest"]],
      [pb.Role.ROLE_USER, ["toolResponse"]],
      [pb.Role.ROLE_ASSISTANT, ["text"]],
    ]);
    const listed = (await listOn(C.client)).sessions.find((x) => x.id === s.id);
    expect(listed).toMatchObject({ id: s.id, workingDir: work, messageCount: 4 });

    // The rows themselves are goose's message model: content_json holds goose's content blocks, metadata_json its flags.
    const rows = await c.rows<{ role: string; content_json: Record<string, unknown>[]; metadata_json: Record<string, unknown>; message_id: string }>(
      "SELECT role, content_json, metadata_json, message_id FROM messages WHERE session_id = $1 ORDER BY created_timestamp, id",
      [s.id],
    );
    expect(rows.map((r) => [r.role, r.content_json.map((b) => b.type)])).toEqual([
      ["user", ["text"]],
      ["assistant", ["toolRequest"]],
      ["user", ["toolResponse"]],
      ["assistant", ["text"]],
    ]);
    expect(rows[1]!.content_json[0]).toMatchObject({ type: "toolRequest", id: "call_pid", toolCall: { status: "success", value: { name: "fx__pid", arguments: {} } } });
    expect(rows[2]!.content_json[0]).toMatchObject({ type: "toolResponse", id: "call_pid", toolResult: { status: "success", value: { content: [{ type: "text" }] } } });
    for (const r of rows) expect(r.metadata_json).toMatchObject({ userVisible: expect.any(Boolean), agentVisible: expect.any(Boolean) });
    expect(got.messages.map((m) => m.id)).toEqual(rows.map((r) => r.message_id));

    // The extension process ran on B, the replica that ran the turn.
    const pid = Number((rows[2]!.content_json[0]!.toolResult as { value: { content: { text: string }[] } }).value.content[0]!.text);
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    expect(ppid).toBe(B.pid);
  });

  it("a replica that ran a session before sees what another replica added since (no stale history): B, then A, then B", async () => {
    const s = await createOn(C.client, work);
    const turns: [SessionReplica, string][] = [[B, "first on B"], [A, "second on A"], [B, "third on B"]];
    const tags: string[] = [];
    for (const [r, text] of turns) {
      const tag = model.tag({ events: openaiText(`answer to ${text}`) });
      tags.push(tag);
      const run = replyOn(r.client, s.id, say(tag, text));
      await run.until(hasFinished);
      expect(finishedReason(run.events)).toBe(STOP);
    }
    // The provider request of the third turn (on B) carries the whole conversation, A's turn included.
    const last = c.model.requests.filter((b) => JSON.stringify(b.messages).includes(`[[tag:${tags[2]}]]`)).at(-1)!;
    const said = (last.messages as { role: string; content: unknown }[]).filter((m) => m.role !== "system").map((m) => `${m.role}: ${JSON.stringify(m.content)}`);
    expect(said.map((x) => x.replace(/ \[\[tag:t\d+\]\]/, ""))).toEqual([
      'user: "first on B"',
      'assistant: "answer to first on B"',
      'user: "second on A"',
      'assistant: "answer to second on A"',
      'user: "third on B"',
    ]);
  });

  it("one run per session across replicas: a Reply on any other replica (and on the run's own) is FAILED_PRECONDITION busy", async () => {
    const s = await createOn(C.client, work);
    const g = gate();
    const tag = model.tag({ events: openaiText("a held answer", { pieces: 4 }), holdAfter: 2, hold: g.promise });
    const run = replyOn(B.client, s.id, say(tag), "req-busy-1");
    try {
      await run.until((es) => es.some((e) => kind(e) === "textDelta"));
      for (const r of [A, C, B]) {
        const second = replyOn(r.client, s.id, say(model.tag(), "me too"), `req-busy-${r.name}`);
        const err = await second.ended;
        expect(err?.code, `Reply on ${r.name}`).toBe(status.FAILED_PRECONDITION);
        expect(err?.details).toMatch(/busy with request req-busy-1/);
        expect(second.events).toEqual([]);
      }
      const summarize = await call(A.client, A.client.summarizeSession, pb.SummarizeSessionRequest.fromPartial({ sessionId: s.id })).then(() => undefined, (e: { code: number; details: string }) => e);
      expect(summarize?.code, "SummarizeSession on A").toBe(status.FAILED_PRECONDITION);
      expect(summarize?.details).toMatch(/busy with request req-busy-1/);
      // The database holds the rule, and every replica reports the running request.
      expect(await c.rows("SELECT request_id FROM session_runs WHERE session_id = $1", [s.id])).toEqual([{ request_id: "req-busy-1" }]);
      for (const r of [A, C]) expect((await getOn(r.client, s.id)).session!.runningRequestId, `GetSession on ${r.name}`).toBe("req-busy-1");
      expect((await listOn(A.client)).sessions.find((x) => x.id === s.id)?.runningRequestId).toBe("req-busy-1");
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    expect(finishedReason(run.events)).toBe(STOP);
    const next = replyOn(C.client, s.id, say(model.tag(), "now me"));
    await next.until(hasFinished);
    expect(finishedReason(next.events)).toBe(STOP);
    // The refused Replies left nothing: two user messages, two answers.
    const roles = (await getOn(A.client, s.id)).messages.map((m) => m.role);
    expect(roles).toEqual([pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT, pb.Role.ROLE_USER, pb.Role.ROLE_ASSISTANT]);
  });

  it("a client that got a run's finished can Reply at once on another replica (20 times): the session is free by then", async () => {
    const s = await createOn(A.client, work);
    const refused: string[] = [];
    for (let i = 0; i < 20; i++) {
      const first = replyOn(B.client, s.id, say(model.tag(), `first ${i}`));
      await first.until(hasFinished);
      // At the finished event, not at the end of the stream: what a client reacts to.
      const second = replyOn(C.client, s.id, say(model.tag(), `second ${i}`));
      const err = await second.ended;
      if (err) refused.push(`${i}: ${err.details}`);
      await first.ended;
    }
    expect(refused).toEqual([]);
  });

  it("two replicas racing to start a run on one session, 100 times: exactly one wins each time", async () => {
    const s = await createOn(A.client, work);
    const outcomes: string[] = [];
    for (let i = 0; i < 100; i++) {
      const [first, second] = i % 2 === 0 ? [A, B] : [B, A];
      // The winner's answer is held until the other Reply is decided, so the two really overlap
      // (an instant answer could end the first run before the second Reply even arrives).
      const g = gate();
      const tags = [first, second].map(() => model.tag({ events: openaiText(`race ${i}`), holdAfter: 1, hold: g.promise }));
      const runs = [first, second].map((r, j) => replyOn(r.client, s.id, say(tags[j]!, `race ${i}`), `race-${i}-${r.name}`));
      let decided = false;
      runs.forEach((r) => void r.ended.then(() => (decided = true)));
      try {
        // Decided: one Reply was refused, or both reached the provider (both accepted: the rule broken).
        await expectEventually(() => decided || tags.every((t) => model.requests(t) > 0), `round ${i} to be decided`);
      } finally {
        g.release();
      }
      const ends = await Promise.all(runs.map((r) => r.ended));
      const won = runs.filter((r, j) => ends[j] === undefined && finishedReason(r.events) === STOP).length;
      const busy = ends.filter((e) => e?.code === status.FAILED_PRECONDITION && /busy with request race-/.test(e.details)).length;
      outcomes.push(`${won}/${busy}`);
    }
    expect(outcomes.filter((o) => o !== "1/1"), `round outcomes (winners/busy): ${outcomes.join(" ")}`).toEqual([]);
    const users = await c.rows<{ n: string }>("SELECT count(*) AS n FROM messages WHERE session_id = $1 AND role = 'user'", [s.id]);
    expect(Number(users[0]!.n)).toBe(100);
  }, 300_000);
});

describe("GetStats across replicas", () => {
  it("names the replica that answered and gives cluster totals from the database", async () => {
    const idle = await Promise.all([A, B, C].map((r) => statsOn(r.client)));
    idle.forEach((st, i) => {
      const r = [A, B, C][i]!;
      expect(st.replica, `GetStats on ${r.name}`).toEqual({ id: r.replicaId, address: r.address });
      expect(st.cluster).toEqual({ runningReplies: 0, replicasRunning: 0 });
    });
    // Sessions "on disk" are the database's, the same on every replica.
    const inDb = Number((await c.rows<{ n: string }>("SELECT count(*) AS n FROM sessions"))[0]!.n);
    expect(idle.map((st) => st.sessionsOnDisk)).toEqual([inDb, inDb, inDb]);
    const s = await createOn(A.client, work);
    const g = gate();
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("held", { pieces: 2 }), holdAfter: 1, hold: g.promise })));
    try {
      await run.until((es) => es.length > 0);
      const onA = await statsOn(A.client);
      expect(onA.runningReplies).toBe(0);
      expect(onA.cluster).toEqual({ runningReplies: 1, replicasRunning: 1 });
      expect((await statsOn(B.client)).runningReplies).toBe(1);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    expect((await statsOn(C.client)).cluster, "right after the run's finished").toEqual({ runningReplies: 0, replicasRunning: 0 });
  });
});

describe("a session can leave the cluster", () => {
  it("skein session export --store postgres writes a goose sessions.db that goose reads; import brings it back equal", async () => {
    const s = await createOn(A.client, work, [fixtureExt("fx")]);
    const tag = model.tag({ events: openaiToolCalls([{ id: "call_x", name: "fx__pid", args: {} }]) }, { events: openaiText("Done with tools.") });
    await replyOn(B.client, s.id, say(tag, "use a tool")).until(hasFinished);
    const before = await getOn(C.client, s.id);
    const out = await mkdtemp(join(work, "export-"));
    const env = { SKEIN_DATABASE_URL: c.databaseUrl };

    const exported = await runCli(["session", "export", s.id, "--to", out, "--store", "postgres"], env);
    expect(exported.code, exported.stderr).toBe(0);
    const db = openLikeGoose(join(out, "sessions.db"));
    try {
      const goose = expectGooseReadable(db, s.id);
      expect(goose.map((m) => [m.role, m.content.map((b) => b.type)])).toEqual(before.messages.map((m) => [m.role === pb.Role.ROLE_USER ? "user" : "assistant", m.content.map((x) => x.kind?.$case)]));
    } finally {
      db.close();
    }
    const jsonl = await runCli(["session", "export", s.id, "--to", out, "--store", "postgres", "--format", "jsonl"], env);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    expect(jsonl.stdout).toMatch(new RegExp(`${s.id}\\.jsonl \\(4 messages\\)`));

    await call(B.client, B.client.deleteSession, pb.DeleteSessionRequest.fromPartial({ sessionId: s.id }));
    const gone = await getOn(A.client, s.id).catch((e: { code: number }) => e);
    expect((gone as { code: number }).code).toBe(status.NOT_FOUND);

    const imported = await runCli(["session", "import", join(out, "sessions.db"), "--store", "postgres"], env);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(new RegExp(`imported ${s.id} \\(4 messages\\)`));
    const after = await getOn(A.client, s.id);
    expect(after.messages).toEqual(before.messages);
    expect({ ...after.session!, updatedAt: undefined, lastSeq: 0 }).toEqual({ ...before.session!, updatedAt: undefined, lastSeq: 0 });
  });
});

/** The checked-in CLI bin, as `npx skein` runs it, with only the variables given (none of the test's SKEIN_*). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => v !== undefined && !k.startsWith("SKEIN_"))) as Record<string, string>;
  return new Promise((resolve) => {
    execFile(process.execPath, [`${repoRoot}packages/cli/bin/skein.js`, ...args], { env: { ...clean, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

itLogsNoPassword();
