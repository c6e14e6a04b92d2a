import { describe, expect, it } from "vitest";
import { grpcMetricsHooks, metricsRegistry } from "../src/metrics.js";

async function sent(method: string): Promise<number> {
  const metric = await metricsRegistry.getSingleMetric("skein_grpc_stream_messages_sent_total")!.get();
  return metric.values.find((v) => v.labels.method === method)?.value ?? 0;
}

describe("stream message counting", () => {
  it("counts what calls add to their cells, across scrapes and calls, per method", async () => {
    const a = grpcMetricsHooks.messageCounter!("/t.S/A");
    const b = grpcMetricsHooks.messageCounter!("/t.S/B");
    a.count += 3;
    b.count += 1;
    expect(await sent("/t.S/A")).toBe(3);
    expect(await sent("/t.S/B")).toBe(1);
    // A second call of the same method shares the cell; a scrape with nothing new changes nothing.
    expect(grpcMetricsHooks.messageCounter!("/t.S/A")).toBe(a);
    expect(await sent("/t.S/A")).toBe(3);
    a.count += 2;
    expect(await sent("/t.S/A")).toBe(5);
    await expect(metricsRegistry.metrics()).resolves.toMatch(/skein_grpc_stream_messages_sent_total\{method="\/t\.S\/A"\} 5/);
  });
});
