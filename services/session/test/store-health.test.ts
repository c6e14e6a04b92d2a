import pg from "pg";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { StoreHealth } from "../src/store/store-health.js";

/**
 * Health follows the database (store-health.ts): NOT_SERVING only while the
 * probe finds the database unreachable, one report per change, a probe at
 * once when a call suspects an outage, and nothing after close().
 */
const log = pino({ level: "silent" });
const target = { kind: "postgres", location: "postgresql://u:***@db/skein" } as const;
const refused = () => Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
const diskFull = () => Object.assign(new pg.DatabaseError("could not extend file", 0, "error"), { code: "53100" });

function harness(everyMs: number) {
  let fault: (() => Error) | undefined;
  let probes = 0;
  const reports: boolean[] = [];
  const health = new StoreHealth({
    probe: async () => {
      probes++;
      if (fault) throw fault();
    },
    target,
    log,
    report: (serving) => reports.push(serving),
    everyMs,
    whileDownMs: 10,
  });
  return { health, reports, probes: () => probes, set: (f: (() => Error) | undefined) => (fault = f) };
}

describe("StoreHealth", () => {
  it("reports NOT_SERVING once while unreachable and SERVING once when it answers again", async () => {
    const h = harness(20);
    try {
      h.set(refused);
      await expect.poll(() => h.reports).toEqual([false]);
      const probesWhileDown = h.probes();
      await expect.poll(() => h.probes()).toBeGreaterThan(probesWhileDown + 2);
      expect(h.reports).toEqual([false]);
      h.set(undefined);
      await expect.poll(() => h.reports).toEqual([false, true]);
      expect(h.health.isServing).toBe(true);
    } finally {
      await h.health.close();
    }
  });

  it("one failed probe alone (a stall on a loaded host) does not flip health", async () => {
    const h = harness(20);
    try {
      // Fails exactly once: the fault clears itself as it is thrown.
      h.set(() => (h.set(undefined), refused()));
      const before = h.probes();
      await expect.poll(() => h.probes()).toBeGreaterThan(before + 3);
      expect(h.reports).toEqual([]);
    } finally {
      await h.health.close();
    }
  });

  it("a full database is not unreachable: it keeps serving", async () => {
    const h = harness(20);
    try {
      h.set(diskFull);
      const before = h.probes();
      await expect.poll(() => h.probes()).toBeGreaterThan(before + 2);
      expect(h.reports).toEqual([]);
      expect(h.health.isServing).toBe(true);
    } finally {
      await h.health.close();
    }
  });

  it("a suspected outage is probed at once, not at the next period; close() stops the probes", async () => {
    const h = harness(3_600_000);
    h.set(refused);
    h.health.suspect();
    await expect.poll(() => h.reports).toEqual([false]);
    await h.health.close();
    const after = h.probes();
    h.health.suspect();
    await new Promise((r) => setTimeout(r, 50));
    expect(h.probes()).toBe(after);
  });
});
