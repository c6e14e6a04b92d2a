import { session as pb } from "@skein/proto";
import { collect } from "@skein/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession, reply, startHarness, type Harness } from "./support/harness.js";

describe("session metrics", () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await startHarness({ SKEIN_METRICS_ADDR: "127.0.0.1:0" });
    port = (await h.svc.waitForLog((l) => l.msg === "metrics listening")).port as number;
  });
  afterAll(() => h?.close());

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const value = (text: string, name: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(" ").at(-1));
  };

  it("exports the session gauges and counters beside the runtime's gRPC metrics", async () => {
    const s = await createSession(h.client);
    const events = await collect(reply(h.client, s.id, "hi"));
    const text = await scrape();
    expect(value(text, "skein_session_live_agents")).toBe(1);
    expect(value(text, "skein_session_running_replies")).toBe(0);
    expect(value(text, "skein_session_extension_processes")).toBe(0);
    expect(value(text, "skein_session_evictions_total")).toBe(0);
    expect(value(text, "skein_session_stream_events_total")).toBe(events.length);
    expect(text).toMatch(/skein_grpc_requests_total\{[^}]*method="\/skein\.session\.v1\.SessionService\/CreateSession"/);
    expect(text).toContain('service="session"');
    expect(events.at(-1)!.event?.$case === "finished" && events.at(-1)!.event).toMatchObject({ value: { reason: pb.FinishReason.FINISH_REASON_STOP } });
  });
});
