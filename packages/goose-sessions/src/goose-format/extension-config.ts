import { ENV_KEY, ENV_KEY_RULE } from "@skein/host";
import { InvalidArgumentError } from "@skein/runtime";

/** One stdio MCP server an agent runs, as given at CreateSession/AddExtension or in service config. */
export interface ExtensionConfig {
  name: string;
  cmd: string;
  args: string[];
  env: Record<string, string>;
  /** Per tool call; 0 in the input means the default. */
  timeoutSeconds: number;
}

export const DEFAULT_TIMEOUT_SECONDS = 300;
export const MAX_TIMEOUT_SECONDS = 3600;

// `__` separates extension and tool in prefixed tool names, so it may not occur inside a
// name, nor may a name end in `_`: then the first `__` of `name__tool` is the separator.
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ARGS = 256;
const MAX_ARG_CHARS = 32_768;

// goose turns display names such as "My Tools" into tool prefixes (and keys of extension_data's
// stored extensions); do the same so the prefix is valid: other characters become '_', runs of
// '_' collapse (no `__`) and a trailing '_' goes ("Developer (beta)" → "Developer_beta").
export function gooseKey(name: string): string {
  return name.trim().replace(/[^A-Za-z0-9_-]/g, "_").replace(/_+/g, "_").replace(/_$/, "");
}

/** Input as it arrives from a request or a config file (snake_case or camelCase timeout). */
export interface RawExtensionConfig {
  name?: unknown;
  cmd?: unknown;
  args?: unknown;
  env?: unknown;
  timeout_seconds?: unknown;
  timeoutSeconds?: unknown;
}

/** Validates one extension; `field` prefixes error fields, e.g. `extensions[0]`. */
export function validateExtensionConfig(raw: RawExtensionConfig, field: string): ExtensionConfig {
  if (raw === null || typeof raw !== "object") throw new InvalidArgumentError(field, "must be an object");
  const name = raw.name;
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidArgumentError(`${field}.name`, "must be 1-64 characters of letters, digits, '_' or '-'");
  }
  if (name.includes("__")) throw new InvalidArgumentError(`${field}.name`, "must not contain '__' (it separates extension and tool names)");
  if (name.endsWith("_")) throw new InvalidArgumentError(`${field}.name`, "must not end with '_' (the tool prefix `name__` would read as a longer separator)");

  const cmd = raw.cmd;
  if (typeof cmd !== "string" || cmd.trim() === "") throw new InvalidArgumentError(`${field}.cmd`, "must be a non-empty command");
  if (cmd.includes("\0")) throw new InvalidArgumentError(`${field}.cmd`, "must not contain NUL");

  const args = raw.args ?? [];
  if (!Array.isArray(args)) throw new InvalidArgumentError(`${field}.args`, "must be a list of strings");
  if (args.length > MAX_ARGS) throw new InvalidArgumentError(`${field}.args`, `at most ${MAX_ARGS} arguments`);
  args.forEach((a, i) => {
    if (typeof a !== "string") throw new InvalidArgumentError(`${field}.args[${i}]`, "must be a string");
    if (a.includes("\0")) throw new InvalidArgumentError(`${field}.args[${i}]`, "must not contain NUL");
    if (a.length > MAX_ARG_CHARS) throw new InvalidArgumentError(`${field}.args[${i}]`, `at most ${MAX_ARG_CHARS} characters`);
  });

  const envIn = raw.env ?? {};
  if (typeof envIn !== "object" || envIn === null || Array.isArray(envIn)) throw new InvalidArgumentError(`${field}.env`, "must be a map of strings");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(envIn)) {
    if (!ENV_KEY.test(k)) throw new InvalidArgumentError(`${field}.env`, `key ${JSON.stringify(k)} must match ${ENV_KEY_RULE}`);
    if (typeof v !== "string") throw new InvalidArgumentError(`${field}.env.${k}`, "must be a string");
    if (v.includes("\0")) throw new InvalidArgumentError(`${field}.env.${k}`, "must not contain NUL");
    env[k] = v;
  }

  const t = raw.timeout_seconds ?? raw.timeoutSeconds ?? 0;
  if (typeof t !== "number" || !Number.isInteger(t) || t < 0) {
    throw new InvalidArgumentError(`${field}.timeout_seconds`, "must be a whole number of seconds >= 0");
  }
  if (t > MAX_TIMEOUT_SECONDS) throw new InvalidArgumentError(`${field}.timeout_seconds`, `at most ${MAX_TIMEOUT_SECONDS}`);

  return { name, cmd, args: [...(args as string[])], env, timeoutSeconds: t === 0 ? DEFAULT_TIMEOUT_SECONDS : t };
}

/** Validates a list, e.g. CreateSession's `extensions`; names must be unique within it. */
export function validateExtensionConfigs(raw: unknown, field = "extensions"): ExtensionConfig[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new InvalidArgumentError(field, "must be a list");
  const seen = new Set<string>();
  return raw.map((r, i) => {
    const cfg = validateExtensionConfig(r as RawExtensionConfig, `${field}[${i}]`);
    if (seen.has(cfg.name)) throw new InvalidArgumentError(`${field}[${i}].name`, `duplicate extension name ${JSON.stringify(cfg.name)}`);
    seen.add(cfg.name);
    return cfg;
  });
}
