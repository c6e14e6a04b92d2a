import { readFileSync } from "node:fs";
import { ConfigError } from "@skein/runtime";

/**
 * Prompts that mean "an agent waits for a person", per runtime label (the
 * StartAgent `runtime`); "*" applies to every agent. Each is a regular
 * expression (case-insensitive) tried against the last lines of the pane.
 * Kept to what the runtimes print when they stop for a decision, not to what
 * they print while they work, so a match is a strong signal.
 */
export const BUILTIN_PROMPTS: Readonly<Record<string, readonly string[]>> = {
  "*": [
    // The usual yes/no question of scripts and installers, and a shell's `read -p`.
    String.raw`\((y/n|yes/no)\)\s*:?\s*$`,
    String.raw`\[(y/n|Y/n|y/N)\]\s*:?\s*$`,
    String.raw`Do you want to proceed\?`,
    String.raw`Press (Enter|any key) to continue`,
  ],
  // Claude Code's permission dialog ("Do you want to make this edit to x?" with "❯ 1. Yes").
  claude: [String.raw`Do you want to (proceed|make this edit|create|run|allow)`, String.raw`❯\s*1\.\s*Yes`, String.raw`Esc to cancel`],
  // codex's approval prompt ("Allow command?", "Would you like to run the following command?").
  codex: [String.raw`Allow command\?`, String.raw`Would you like to (run|make|apply)`, String.raw`Yes, proceed`, String.raw`\bApprove\b.*\?`],
  // goose's tool confirmation ("Goose would like to call the above tool. Allow? …").
  goose: [String.raw`would like to call the above tool`, String.raw`Allow\?`, String.raw`\bAllow\b.*\bDeny\b`],
};

/** Lines of the pane's screen (non-blank, from the bottom) a prompt is looked for in. */
export const PROMPT_LINES = 8;

export class PromptTable {
  private readonly byRuntime = new Map<string, RegExp[]>();

  constructor(table: Readonly<Record<string, readonly string[]>>, source = "the built-in prompt table") {
    for (const [runtime, patterns] of Object.entries(table)) {
      if (!Array.isArray(patterns)) throw new ConfigError(`${source}: ${JSON.stringify(runtime)} must map to an array of regular expressions`);
      const list = this.byRuntime.get(runtime) ?? [];
      for (const p of patterns) {
        if (typeof p !== "string") throw new ConfigError(`${source}: ${JSON.stringify(runtime)} holds a non-string pattern`);
        try {
          list.push(new RegExp(p, "im"));
        } catch (err) {
          throw new ConfigError(`${source}: ${JSON.stringify(p)} is not a regular expression (${(err as Error).message})`);
        }
      }
      this.byRuntime.set(runtime, list);
    }
  }

  /** The built-in table, extended by the operator's file (its patterns are added to the built-in ones). */
  static load(file: string | undefined): PromptTable {
    const table: Record<string, string[]> = Object.fromEntries(Object.entries(BUILTIN_PROMPTS).map(([k, v]) => [k, [...v]]));
    if (file !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
      } catch (err) {
        throw new ConfigError(`SKEIN_FLEET_PROMPTS=${JSON.stringify(file)}: ${(err as Error).message}`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new ConfigError(`SKEIN_FLEET_PROMPTS=${JSON.stringify(file)}: must hold a JSON object {"runtime": ["regex", …]}`);
      }
      for (const [runtime, patterns] of Object.entries(parsed as Record<string, unknown>)) {
        if (!Array.isArray(patterns)) throw new ConfigError(`SKEIN_FLEET_PROMPTS=${JSON.stringify(file)}: ${JSON.stringify(runtime)} must map to an array of regular expressions`);
        table[runtime] = [...(table[runtime] ?? []), ...(patterns as string[])];
      }
      return new PromptTable(table, `SKEIN_FLEET_PROMPTS=${JSON.stringify(file)}`);
    }
    return new PromptTable(table);
  }

  /**
   * The prompt the screen ends with: its last non-blank lines, and whether
   * the very last line is the prompt (the cursor sits on it); undefined when
   * none of the runtime's (or the "*") patterns match there.
   */
  match(runtime: string, screen: string): { text: string; onLastLine: boolean } | undefined {
    const tail = screen
      .split("\n")
      .map((l) => l.trimEnd())
      .filter((l) => l !== "")
      .slice(-PROMPT_LINES);
    if (tail.length === 0) return undefined;
    const text = tail.join("\n");
    const patterns = [...(this.byRuntime.get(runtime) ?? []), ...(runtime === "*" ? [] : (this.byRuntime.get("*") ?? []))];
    if (!patterns.some((p) => p.test(text))) return undefined;
    const last = tail[tail.length - 1]!;
    return { text, onLastLine: patterns.some((p) => p.test(last)) };
  }
}
