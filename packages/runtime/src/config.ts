/**
 * Environment parsing. Every setting of skein is an environment variable; a bad
 * value stops the service at start with a message naming the variable.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

export function envString(name: string, fallback: string, env: Env = process.env): string {
  const v = env[name];
  return v === undefined || v === "" ? fallback : v;
}

export function envOptional(name: string, env: Env = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
}

export function envInt(name: string, fallback: number, range: { min: number; max: number }, env: Env = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a whole number`);
  const n = Number(raw);
  if (n < range.min || n > range.max) throw new ConfigError(`${name}=${n} is outside ${range.min}..${range.max}`);
  return n;
}

export function envNumber(name: string, fallback: number, range: { min: number; max: number }, env: Env = process.env): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError(`${name}=${JSON.stringify(raw)} is not a number`);
  if (n < range.min || n > range.max) throw new ConfigError(`${name}=${n} is outside ${range.min}..${range.max}`);
  return n;
}

export function envEnum<T extends string>(name: string, allowed: readonly T[], fallback: T, env: Env = process.env): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name}=${JSON.stringify(raw)} must be one of ${allowed.join(", ")}`);
  return raw as T;
}

/** `true`/`false` (also 1/0, yes/no); anything else is a configuration error. */
export function envBool(name: string, fallback: boolean, env: Env = process.env): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const v = raw.trim().toLowerCase();
  if (["true", "1", "yes"].includes(v)) return true;
  if (["false", "0", "no"].includes(v)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(raw)} must be true or false`);
}
