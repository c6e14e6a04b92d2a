import { session as pb } from "@skein/proto";
import { collect, metricSample, scrapeMetrics } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession, reply, startHarness, type Harness } from "./support/harness.js";

describe("session metrics", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_METRICS_ADDR: "127.0.0.1:0" });
  });
  afterAll(() => h?.close());

  const scrape = async () => {
    const res = await scrapeMetrics(h.svc);
    expect(res.status).toBe(200);
    return res.text;
  };

  it("exports the session gauges and counters beside the runtime's gRPC metrics", async () => {
    const s = await createSession(h.client);
    const events = await collect(reply(h.client, s.id, "hi"));
    const text = await scrape();
    expect(metricSample(text, "skein_session_live_agents")).toBe(1);
    expect(metricSample(text, "skein_session_running_replies")).toBe(0);
    expect(metricSample(text, "skein_session_extension_processes")).toBe(0);
    expect(metricSample(text, "skein_session_evictions_total")).toBe(0);
    expect(metricSample(text, "skein_session_stream_events_total")).toBe(events.length);
    expect(text).toMatch(/skein_grpc_requests_total\{[^}]*method="\/skein\.session\.v1\.SessionService\/CreateSession"/);
    expect(text).toContain('service="session"');
    expect(events.at(-1)!.event?.$case === "finished" && events.at(-1)!.event).toMatchObject({ value: { reason: pb.FinishReason.FINISH_REASON_STOP } });
  });
});
