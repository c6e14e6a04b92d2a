import pino from "pino";
import { describe, expect, it } from "vitest";
import { RepeatedFaults } from "../src/fault-log.js";

/** A logger whose lines the test reads, and a clock it moves. */
function setup() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  let t = 1_000_000;
  const faults = new RepeatedFaults(log, "heartbeat writes", "agents", () => t);
  return { lines, faults, advance: (ms: number) => (t += ms) };
}
const enospc = () => Object.assign(new Error("ENOSPC: no space left on device, open '/hb/a.hb'"), { code: "ENOSPC" });

describe("RepeatedFaults", () => {
  it("the first failure at warn with its cause, then at most one summary a minute, one line on recovery", () => {
    const { lines, faults, advance } = setup();
    // Five agents failing every 250 ms for three minutes: 3,600 failures.
    for (let tick = 0; tick < 720; tick++) {
      for (const a of ["a1", "a2", "a3", "a4", "a5"]) faults.failed(a, enospc(), { agent: a });
      advance(250);
    }
    expect(lines[0]).toMatchObject({ level: 40, msg: "heartbeat writes failing: ENOSPC: no space left on device, open '/hb/a.hb'", agent: "a1", subject: "a1" });
    const summaries = lines.slice(1);
    expect(summaries).toHaveLength(2);
    expect(summaries[0]).toMatchObject({ level: 40, failing: 5 });
    expect(summaries[0]!.msg).toMatch(/^heartbeat writes failing for 5 agents: ENOSPC: no space left on device/);
    for (const a of ["a1", "a2", "a3", "a4"]) faults.succeeded(a);
    expect(lines).toHaveLength(3);
    faults.succeeded("a5");
    expect(lines[3]).toMatchObject({ level: 30, msg: "heartbeat writes: working again after 3600 failures", failures: 3600 });
    // A success with nothing failing says nothing; a new fault is a first failure again.
    faults.succeeded("a1");
    faults.failed("a1", enospc());
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ level: 40, subject: "a1" });
  });

  it("a subject that is gone stops counting without a recovery line of its own", () => {
    const { lines, faults } = setup();
    faults.failed("a1", new Error("EIO"));
    faults.failed("a2", new Error("EIO"));
    faults.forget("a1");
    expect(faults.failingCount).toBe(1);
    faults.succeeded("a2");
    expect(lines.map((l) => l.msg)).toEqual(["heartbeat writes failing: EIO", "heartbeat writes: working again after 2 failures"]);
  });
});
