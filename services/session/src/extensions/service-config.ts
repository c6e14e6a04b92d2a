import { ConfigError, InvalidArgumentError, type Logger } from "@skein/runtime";
import { GooseYamlFile, parseGooseYaml, type GooseYaml } from "../goose-yaml.js";
import { gooseKey, validateExtensionConfig, validateExtensionConfigs, type ExtensionConfig } from "@skein/goose-sessions/goose-format";
import { findOnPath, type Env } from "@skein/host";
import { resolveBuiltin } from "./goose-builtins.js";

type Warn = Pick<Logger, "warn">;

/**
 * Service-wide extensions, started for every session: `SKEIN_EXTENSIONS` when
 * set, else goose's config.yaml, so a machine set up for the goose CLI gets the
 * same tools: its stdio entries, and its builtins run as `goose mcp NAME` when
 * the goose CLI is on PATH. An entry skein cannot run is logged, one warning
 * each. A bad value stops the service at start. `gooseConfig` is the file as
 * already read for the provider settings.
 */
export async function loadServiceExtensions(opts: { env?: Env; log?: Warn } & ({ gooseConfigPath: string } | { gooseConfig: GooseYamlFile })): Promise<ExtensionConfig[]> {
  const env = opts.env ?? process.env;
  const raw = env.SKEIN_EXTENSIONS;
  if (raw !== undefined && raw.trim() !== "") return parseSkeinExtensions(raw);
  const file = "gooseConfig" in opts ? opts.gooseConfig : new GooseYamlFile(opts.gooseConfigPath);
  return gooseExtensions(file.read(), file.path, { goose: () => findOnPath("goose", env.PATH), log: opts.log });
}

/** `SKEIN_EXTENSIONS`: a JSON array of {name, cmd, args, env, timeout_seconds}. */
export function parseSkeinExtensions(raw: string): ExtensionConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`SKEIN_EXTENSIONS is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new ConfigError("SKEIN_EXTENSIONS must be a JSON array of {name, cmd, args, env, timeout_seconds}");
  // Fields read `[0].name`: the entries are the whole value.
  return asConfigErrors("SKEIN_EXTENSIONS", () => validateExtensionConfigs(parsed, ""));
}

/** Where the goose CLI is (looked up once, when a builtin needs it), and where skipped entries are reported. */
export interface GooseContext {
  readonly goose?: () => string | undefined;
  readonly log?: Warn;
}

/**
 * goose's shape: `extensions: {<key>: {type, name, cmd, args, envs, timeout, enabled, ...}}`.
 * stdio entries run as they are; builtin ones as `goose mcp NAME` when the goose
 * CLI is there. Platform (inside goose's own process), SSE and HTTP entries are
 * skipped with a warning; disabled ones silently. `env_keys` (values from goose's
 * keyring) are not resolved.
 */
export function parseGooseExtensions(text: string, source: string, ctx: GooseContext = {}): ExtensionConfig[] {
  return gooseExtensions(parseGooseYaml(text), source, ctx);
}

/** Why skein does not run an entry of this type. */
function unsupported(type: unknown): string {
  if (type === "platform") return "a platform extension runs inside goose's own process; skein has no equivalent";
  if (type === "sse" || type === "streamable_http") return `remote (${type}) extensions are not supported; skein runs stdio MCP servers`;
  return `type ${JSON.stringify(type ?? null)} is not supported; skein runs stdio and builtin extensions`;
}

/** The enabled entries of goose's config.yaml that skein can run; no file means none. */
function gooseExtensions(file: GooseYaml, source: string, ctx: GooseContext): ExtensionConfig[] {
  if ("missing" in file) return [];
  if ("readError" in file) throw new ConfigError(`cannot read goose config ${source}: ${file.readError}`);
  if ("yamlError" in file) throw new ConfigError(`goose config ${source} is not valid YAML: ${file.yamlError}`);
  const table = (file.doc as { extensions?: unknown } | null)?.extensions;
  if (table === undefined || table === null) return [];
  if (typeof table !== "object" || Array.isArray(table)) throw new ConfigError(`goose config ${source}: extensions must be a map`);

  const out: ExtensionConfig[] = [];
  const seen = new Set<string>();
  let goose: { path: string | undefined } | undefined;
  const skip = (name: string, type: unknown, why: string) => ctx.log?.warn({ extension: name, type, source }, `goose extension ${name} skipped: ${why}`);
  for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
    if (value === null || typeof value !== "object") continue;
    const e = value as Record<string, unknown>;
    if (e.enabled === false) continue;
    const given = typeof e.name === "string" && e.name !== "" ? e.name : key;
    let run: { cmd: unknown; args: unknown; env: unknown };
    if (e.type === "stdio") run = { cmd: e.cmd, args: e.args ?? [], env: e.envs ?? {} };
    else if (e.type === "builtin") {
      goose ??= { path: ctx.goose?.() };
      const how = resolveBuiltin(given, goose.path);
      if ("skipped" in how) {
        skip(given, e.type, how.skipped);
        continue;
      }
      run = { ...how, env: {} };
    } else {
      skip(given, e.type, unsupported(e.type));
      continue;
    }
    const name = gooseKey(given);
    const cfg = asConfigErrors(`goose config ${source}`, () =>
      validateExtensionConfig({ name, cmd: run.cmd, args: run.args, env: run.env, timeout_seconds: e.timeout ?? 0 }, `extensions.${key}`),
    );
    if (seen.has(cfg.name)) continue;
    seen.add(cfg.name);
    out.push(cfg);
  }
  return out;
}

function asConfigErrors<T>(source: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new ConfigError(`${source}: ${err.message}`);
    throw err;
  }
}
