import { status } from "@grpc/grpc-js";
import { openaiText } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { A, B, C, c, EVENT_BUFFER as BUFFER, itLogsNoPassword, model, texts, useReplicaCluster, work } from "../support/replica-cluster.js";
import { createOn, gate, hasFinished, lastSeqOf, lines, replyOn, say, watchOn, type AnyEvent } from "../support/replicas.js";

/**
 * Issue 11's live events across three real session service processes (A, B,
 * C) on one real PostgreSQL: a watcher on any replica follows a run on another
 * as it happens, hops between replicas without losing or repeating an event,
 * survives the loss of every LISTEN connection, and is told when its cursor
 * left the replay window.
 */
useReplicaCluster("steady");

describe("live events and replay from any replica", () => {
  it("a WatchSession on C follows a run on B as it happens, the same events as B's Reply stream", async () => {
    const s = await createOn(A.client, work);
    const w = watchOn(C.client, s.id, 0);
    const g = gate();
    const tag = model.tag({ events: openaiText("one two three four five six", { pieces: 6 }), holdAfter: 3, hold: g.promise });
    const run = replyOn(B.client, s.id, say(tag));
    try {
      // The provider is still holding the rest of the answer: what C shows now, it shows live.
      await w.until((es) => texts(es).length > 0);
      expect(hasFinished(w.events)).toBe(false);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(run.events));
    expect(texts(w.events).join("")).toBe("one two three four five six");
  });

  it("a watcher that reconnects to other replicas mid-run (after_seq) sees every event exactly once, in order", async () => {
    const s = await createOn(A.client, work);
    const g = gate();
    const tag = model.tag({ events: openaiText("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu", { pieces: 24 }), holdAfter: 8, hold: g.promise, delayMs: 20 });
    const w1 = watchOn(A.client, s.id, 0);
    const run = replyOn(B.client, s.id, say(tag));
    const seen: AnyEvent[] = [];
    try {
      await w1.until((es) => texts(es).length > 0);
      w1.close();
      seen.push(...w1.events);
    } finally {
      g.release();
    }
    // Second hop while the rest streams: C from the last seq A delivered.
    const w2 = watchOn(C.client, s.id, lastSeqOf(seen));
    await w2.until((es) => es.length > 0);
    w2.close();
    seen.push(...w2.events);
    if (!hasFinished(seen)) {
      const w3 = watchOn(B.client, s.id, lastSeqOf(seen));
      await w3.until(hasFinished);
      w3.close();
      seen.push(...w3.events);
    }
    await run.until(hasFinished);
    expect(lines(seen)).toEqual(lines(run.events));
    const seqs = seen.map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
  });

  it("a watcher loses nothing when the database drops every replica's LISTEN connection mid-run", async () => {
    const s = await createOn(A.client, work);
    const w = watchOn(C.client, s.id, 0);
    const g = gate();
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("before and after the cut", { pieces: 8 }), holdAfter: 3, hold: g.promise })));
    try {
      await w.until((es) => texts(es).length > 0);
      // A fault from outside: the server ends the listening backends (a restart, a proxy, an idle timeout would too).
      const cut = await c.rows<{ ok: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND query ~* '^\\s*LISTEN' AND pid <> pg_backend_pid()",
        [c.databaseName],
      );
      expect(cut.length, "LISTEN connections found").toBeGreaterThanOrEqual(c.replicas.length);
    } finally {
      g.release();
    }
    await run.until(hasFinished);
    await w.until(hasFinished);
    w.close();
    expect(lines(w.events)).toEqual(lines(run.events));
  });

  it("a watcher hopping across all three replicas every few events of a long, fast run sees every event exactly once", async () => {
    const s = await createOn(A.client, work);
    // 50 deltas 10 ms apart: the whole run fits the replay window, so a hop never falls out of it.
    const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("y".repeat(50), { pieces: 50 }), delayMs: 10 })));
    const seen: AnyEvent[] = [];
    for (let hop = 0; !hasFinished(seen); hop++) {
      const w = watchOn([C, A, B][hop % 3]!.client, s.id, lastSeqOf(seen));
      await w.until((es) => es.length >= 5 || hasFinished(es));
      w.close();
      // Whatever arrived before the hang-up took effect counts too: the next hop starts after the last of it.
      seen.push(...w.events);
    }
    await run.until(hasFinished);
    expect(lines(seen)).toEqual(lines(run.events));
    expect(texts(seen).join("")).toBe("y".repeat(50));
  });

  it("an evicted cursor gets OUT_OF_RANGE reload on any replica; the window keeps the last SKEIN_EVENT_BUFFER events", async () => {
    const s = await createOn(A.client, work);
    let last: AnyEvent[] = [];
    let total = 0;
    while (total <= BUFFER + 10) {
      const run = replyOn(B.client, s.id, say(model.tag({ events: openaiText("a long answer in many small pieces", { pieces: 20 }) })));
      await run.until(hasFinished);
      last = run.events;
      total = lastSeqOf(last);
    }
    for (const r of [A, C]) {
      const evicted = await watchOn(r.client, s.id, 0).ended;
      expect(evicted?.code, `WatchSession on ${r.name}`).toBe(status.OUT_OF_RANGE);
      expect(evicted?.details).toMatch(/no longer buffered \(oldest kept: \d+\); reload the session with GetSession/);
      const ahead = await watchOn(r.client, s.id, total + 5).ended;
      expect(ahead?.code).toBe(status.OUT_OF_RANGE);
      expect(ahead?.details).toMatch(/ahead of/);
    }
    // The oldest cursor still served replays exactly the window.
    const w = watchOn(C.client, s.id, total - BUFFER);
    await w.until((es) => es.length >= BUFFER && hasFinished(es.slice(-1)));
    w.close();
    expect(w.events.map((e) => e.seq)).toEqual(Array.from({ length: BUFFER }, (_, i) => total - BUFFER + 1 + i));
    expect(lines(w.events.slice(-last.length))).toEqual(lines(last));
    // Bounded in the database too (trimming may lag a little behind the replay window, never grow without bound).
    const kept = await c.rows<{ n: string }>("SELECT count(*) AS n FROM session_events WHERE session_id = $1", [s.id]);
    expect(Number(kept[0]!.n)).toBeGreaterThanOrEqual(BUFFER);
    expect(Number(kept[0]!.n)).toBeLessThanOrEqual(2 * BUFFER);
  });
});

itLogsNoPassword();
