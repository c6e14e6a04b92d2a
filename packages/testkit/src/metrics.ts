import type { ServiceProcess } from "./service-process.js";

/** The value of the sample with this name whose labels include all of `labels`. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** GET /metrics of a service started with SKEIN_METRICS_ADDR=127.0.0.1:0. */
export async function scrapeMetrics(svc: ServiceProcess): Promise<{ status: number; contentType: string | null; text: string }> {
  const line = await svc.waitForLog((l) => l.msg === "metrics listening");
  const res = await fetch(`http://127.0.0.1:${line.port as number}/metrics`);
  return { status: res.status, contentType: res.headers.get("content-type"), text: await res.text() };
}
