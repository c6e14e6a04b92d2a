import { ConfigError, InvalidArgumentError } from "@skein/runtime";
import { GooseYamlFile, parseGooseYaml, type GooseYaml } from "../goose-yaml.js";
import { validateExtensionConfig, validateExtensionConfigs, type ExtensionConfig } from "./config.js";

type Env = Record<string, string | undefined>;

/**
 * Service-wide extensions, started for every session: `SKEIN_EXTENSIONS` when
 * set, else the stdio entries of goose's config.yaml, so a machine set up for
 * the goose CLI gets the same tools. A bad value stops the service at start.
 * `gooseConfig` is the file as already read for the provider settings.
 */
export async function loadServiceExtensions(opts: { env?: Env } & ({ gooseConfigPath: string } | { gooseConfig: GooseYamlFile })): Promise<ExtensionConfig[]> {
  const env = opts.env ?? process.env;
  const raw = env.SKEIN_EXTENSIONS;
  if (raw !== undefined && raw.trim() !== "") return parseSkeinExtensions(raw);
  const file = "gooseConfig" in opts ? opts.gooseConfig : new GooseYamlFile(opts.gooseConfigPath);
  return gooseExtensions(file.read(), file.path);
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

/**
 * goose's shape: `extensions: {<key>: {type, name, cmd, args, envs, timeout, enabled, ...}}`.
 * Builtin, SSE and HTTP entries are goose-internal or remote and are skipped, as
 * are disabled ones. `env_keys` (values from goose's keyring) are not resolved.
 */
export function parseGooseExtensions(text: string, source: string): ExtensionConfig[] {
  return gooseExtensions(parseGooseYaml(text), source);
}

/** The enabled `type: stdio` entries of goose's config.yaml; no file means none. */
function gooseExtensions(file: GooseYaml, source: string): ExtensionConfig[] {
  if ("missing" in file) return [];
  if ("readError" in file) throw new ConfigError(`cannot read goose config ${source}: ${file.readError}`);
  if ("yamlError" in file) throw new ConfigError(`goose config ${source} is not valid YAML: ${file.yamlError}`);
  const table = (file.doc as { extensions?: unknown } | null)?.extensions;
  if (table === undefined || table === null) return [];
  if (typeof table !== "object" || Array.isArray(table)) throw new ConfigError(`goose config ${source}: extensions must be a map`);

  const out: ExtensionConfig[] = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
    if (value === null || typeof value !== "object") continue;
    const e = value as Record<string, unknown>;
    if (e.type !== "stdio" || e.enabled === false) continue;
    const name = gooseKey(typeof e.name === "string" && e.name !== "" ? e.name : key);
    const cfg = asConfigErrors(`goose config ${source}`, () =>
      validateExtensionConfig(
        { name, cmd: e.cmd, args: e.args ?? [], env: e.envs ?? {}, timeout_seconds: e.timeout ?? 0 },
        `extensions.${key}`,
      ),
    );
    if (seen.has(cfg.name)) continue;
    seen.add(cfg.name);
    out.push(cfg);
  }
  return out;
}

// goose turns display names such as "My Tools" into tool prefixes; do the same so the
// prefix is valid: other characters become '_' and runs of '_' collapse (no `__`).
export function gooseKey(name: string): string {
  return name.trim().replace(/[^A-Za-z0-9_-]/g, "_").replace(/_+/g, "_");
}

function asConfigErrors<T>(source: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new ConfigError(`${source}: ${err.message}`);
    throw err;
  }
}
