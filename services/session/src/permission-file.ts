import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { Logger } from "@skein/runtime";

/**
 * goose's per-tool permissions (config/permission.rs, PermissionManager):
 * `permission.yaml` beside config.yaml, a map of categories to three lists,
 *
 *   user:          {always_allow: [developer__shell], ask_before: [], never_allow: []}
 *   smart_approve: {always_allow: [], ask_before: [], never_allow: []}
 *
 * `user` holds what a person chose ("always allow" / "always deny" on a
 * confirmation); `smart_approve` goose's cached verdicts. A tool is in at most
 * one list of a category. Read fresh on every use (goose edits it too);
 * written whole, atomically (goose writes it whole as well).
 */
export type PermissionLevel = "always_allow" | "ask_before" | "never_allow";
const LEVELS: readonly PermissionLevel[] = ["always_allow", "ask_before", "never_allow"];

type PermissionMap = Record<string, Record<PermissionLevel, string[]>>;

export class PermissionFile {
  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /** The level of `tool` in `category` (goose's get_permission), if listed. */
  async level(category: "user" | "smart_approve", tool: string): Promise<PermissionLevel | undefined> {
    const map = await this.read();
    const lists = map[category];
    return lists && LEVELS.find((l) => lists[l].includes(tool));
  }

  /** goose's update_user_permission: the tool leaves every list of `user` and joins `level`'s. */
  async setUser(tool: string, level: PermissionLevel): Promise<void> {
    const map = await this.read();
    const lists = (map.user ??= { always_allow: [], ask_before: [], never_allow: [] });
    for (const l of LEVELS) lists[l] = lists[l].filter((t) => t !== tool);
    lists[level].push(tool);
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${randomUUID()}.tmp`;
    try {
      await writeFile(tmp, stringifyYaml(map), { mode: 0o644 });
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** As goose: a missing file is empty; one that does not parse is empty too, with an error logged. */
  private async read(): Promise<PermissionMap> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      this.log.error({ path: this.path, err: (err as Error).message }, "could not read goose's permission.yaml; using no per-tool permissions");
      return {};
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      this.log.error({ path: this.path, err: (err as Error).message }, "goose's permission.yaml does not parse; using no per-tool permissions");
      return {};
    }
    const out: PermissionMap = {};
    if (doc === null || typeof doc !== "object") return out;
    for (const [category, v] of Object.entries(doc as Record<string, unknown>)) {
      const lists = (v ?? {}) as Record<string, unknown>;
      const list = (l: PermissionLevel) => (Array.isArray(lists[l]) ? (lists[l] as unknown[]).filter((t): t is string => typeof t === "string") : []);
      out[category] = { always_allow: list("always_allow"), ask_before: list("ask_before"), never_allow: list("never_allow") };
    }
    return out;
  }
}
