import { createServer } from "node:net";

/** A free loopback port for the service's metrics endpoint. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface MemorySample {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Memory outside the V8 heap held by JS objects: Buffers, ArrayBuffers (nodejs_external_memory_bytes). */
  readonly external: number;
}

/** The service's own memory figures (prom-client's default metrics, prefixed skein_) at the moment its RSS was highest. */
export function sampleAtPeak(metricsUrl: string, everyMs: number): { stop(): Promise<MemorySample | undefined> } {
  let peak: MemorySample | undefined;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const text = await (await fetch(metricsUrl)).text();
        const v = (name: string) => Number(new RegExp(`^skein_${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(text)?.[1] ?? NaN);
        const s = { rss: v("process_resident_memory_bytes"), heapUsed: v("nodejs_heap_size_used_bytes"), heapTotal: v("nodejs_heap_size_total_bytes"), external: v("nodejs_external_memory_bytes") };
        if (!peak || s.rss > peak.rss) peak = s;
      } catch {
        // a busy service may miss a sample; the next one counts
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return peak;
    },
  };
}
