import { ConfigError } from "@skein/runtime";
import type { Env } from "@skein/host";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * A duration setting in milliseconds: a plain number means seconds ("900"),
 * or a number with a unit: "500ms", "30s", "15m", "1h" (units may be combined: "1m30s").
 */
export function envDurationMs(name: string, fallbackMs: number, range: { minMs: number; maxMs: number }, env: Env): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallbackMs;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new ConfigError(`${name}=${JSON.stringify(raw)} must be seconds ("900") or a duration such as "15m", "30s", "500ms", "1h"`);
  if (ms < range.minMs || ms > range.maxMs) throw new ConfigError(`${name}=${JSON.stringify(raw)} is outside ${range.minMs} ms..${range.maxMs} ms`);
  return ms;
}

export function parseDuration(raw: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.round(Number(raw) * 1_000);
  const parts = [...raw.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== raw) return undefined;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}
