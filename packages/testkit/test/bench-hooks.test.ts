import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { openaiText, startOpenAIServer, startService, type FakeModelServer, type FirstByteTiming, type ServiceProcess } from "../src/index.js";

/** The hooks benchmarks use: the fake provider's first-byte timing and node flags for a service process. */
describe("bench hooks", () => {
  let model: FakeModelServer | undefined;
  let svc: ServiceProcess | undefined;
  afterEach(async () => {
    await model?.close();
    await svc?.stop();
    model = svc = undefined;
  });

  async function stream(delayMs: number): Promise<{ seen: Array<{ tag: unknown; t: FirstByteTiming }>; doneAt: number }> {
    const seen: Array<{ tag: unknown; t: FirstByteTiming }> = [];
    model = await startOpenAIServer({
      fallback: () => ({ events: openaiText("abc", { pieces: 3 }), delayMs }),
      onFirstByte: (body, t) => seen.push({ tag: body.tag, t }),
    });
    const res = await fetch(`${model.baseURL}/chat/completions`, { method: "POST", body: JSON.stringify({ stream: true, tag: `d${delayMs}` }) });
    expect(await res.text()).toContain("[DONE]");
    return { seen, doneAt: performance.now() };
  }

  it("reports one first-byte timing per streamed request, whole reply in one write", async () => {
    const { seen } = await stream(0);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.tag).toBe("d0");
    expect(seen[0]!.t.firstByteAt).toBeGreaterThanOrEqual(seen[0]!.t.arrivedAt);
  });

  it("reports it once, at the first event, when events are paced", async () => {
    const { seen, doneAt } = await stream(30);
    expect(seen).toHaveLength(1);
    // Written before the 5 pauses of 30 ms between the 6 events, not after them (same clock: same process).
    expect(seen[0]!.t.firstByteAt).toBeGreaterThanOrEqual(seen[0]!.t.arrivedAt);
    expect(doneAt - seen[0]!.t.firstByteAt).toBeGreaterThanOrEqual(140);
  });

  it("starts a service with the node flags given", async () => {
    svc = await startService("session", { SKEIN_LOG_LEVEL: "info" }, { nodeArgs: ["--max-semi-space-size=8"] });
    const argv = readFileSync(`/proc/${svc.proc.pid}/cmdline`, "utf8").split("\0");
    expect(argv[1]).toBe("--max-semi-space-size=8");
    expect(argv[2]).toMatch(/services\/session\/dist\/main\.js$/);
  });
});
