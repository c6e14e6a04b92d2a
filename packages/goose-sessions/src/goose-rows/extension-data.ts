import { gooseKey, validateExtensionConfig } from "../goose-format/extension-config.js";
import { isObject, type JsonObject } from "../goose-format/messages.js";

/**
 * goose keeps a session's extensions in `extension_data` under
 * `"enabled_extensions.v0": {"extensions": [ExtensionConfig…]}` (goose's serde
 * enum tagged by `type`). skein runs the `stdio` entries and leaves every other
 * entry (goose's built-ins, platform, remote ones) and every other key exactly
 * as goose stored them.
 */
export const ENABLED_EXTENSIONS_KEY = "enabled_extensions.v0";

/** skein's persisted shape (see skein-metadata.ts). */
export interface SkeinExtensionEntry extends JsonObject {
  name: string;
  cmd: string;
  args: string[];
  env: Record<string, string>;
  timeout_seconds: number;
}

function enabledList(data: JsonObject): JsonObject[] | undefined {
  const state = data[ENABLED_EXTENSIONS_KEY];
  if (!isObject(state) || !Array.isArray(state.extensions)) return undefined;
  return state.extensions.filter(isObject);
}

/** The stdio extensions skein can run, in skein's shape; `skipped` names entries that did not validate. */
export function skeinExtensionsOf(data: JsonObject): { extensions: SkeinExtensionEntry[]; skipped: string[] } {
  const extensions: SkeinExtensionEntry[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const e of enabledList(data) ?? []) {
    if (e.type !== "stdio") continue;
    try {
      // goose turns display names ("My Tools") into tool prefixes the same way.
      const name = typeof e.name === "string" ? gooseKey(e.name) : e.name;
      const c = validateExtensionConfig({ name, cmd: e.cmd, args: e.args ?? [], env: e.envs ?? {}, timeout_seconds: e.timeout ?? 0 }, ENABLED_EXTENSIONS_KEY);
      if (seen.has(c.name)) continue;
      seen.add(c.name);
      extensions.push({ name: c.name, cmd: c.cmd, args: c.args, env: c.env, timeout_seconds: c.timeoutSeconds });
    } catch {
      skipped.push(typeof e.name === "string" ? e.name : "?");
    }
  }
  return { extensions, skipped };
}

/**
 * extension_data with skein's extensions as goose's stdio entries: other
 * entries stay in place, a stdio entry goose wrote keeps its extra fields
 * (description, env_keys, available_tools, …) when skein still has it, and the
 * key is added only when there is something to record.
 */
export function withSkeinExtensions(data: JsonObject, entries: readonly SkeinExtensionEntry[]): JsonObject {
  const current = enabledList(data);
  if (current === undefined && entries.length === 0) return data;
  const byName = new Map((current ?? []).filter((e) => e.type === "stdio" && typeof e.name === "string").map((e) => [gooseKey(e.name as string), e]));
  const others = (current ?? []).filter((e) => e.type !== "stdio");
  const stdio = entries.map((e) => ({
    type: "stdio",
    description: "",
    env_keys: [],
    available_tools: [],
    ...byName.get(e.name),
    // goose's own entry keeps its (display) name.
    name: (byName.get(e.name)?.name as string | undefined) ?? e.name,
    cmd: e.cmd,
    args: e.args,
    envs: e.env,
    timeout: e.timeout_seconds,
  }));
  const state = isObject(data[ENABLED_EXTENSIONS_KEY]) ? (data[ENABLED_EXTENSIONS_KEY] as JsonObject) : {};
  return { ...data, [ENABLED_EXTENSIONS_KEY]: { ...state, extensions: [...others, ...stdio] } };
}
