/** Help text, generated from the commands and their options so it lists exactly what each command takes. */
import type { Command } from "./command.js";
import { connectionOptions, GLOBAL_CONNECTION_OPTIONS, HELP_OPTION, optionLines, type Options } from "./options.js";

/** Options accepted before the command words. */
export const GLOBAL_OPTIONS: Options = {
  ...GLOBAL_CONNECTION_OPTIONS,
  json: { type: "boolean", help: "machine-readable output, for commands that have one" },
  ...HELP_OPTION,
  version: { type: "boolean", short: "V", help: "print the version" },
};

export function commandHelp(c: Command): string {
  const conn = connectionOptions(c.services);
  const lines = [`usage: skein ${c.name}${c.synopsis ? ` ${c.synopsis}` : ""}`, "", `${c.summary[0]!.toUpperCase()}${c.summary.slice(1)}.`];
  if (c.details?.length) lines.push("", ...c.details);
  lines.push("", "Options:", ...optionLines({ ...c.options, ...HELP_OPTION }));
  if (Object.keys(conn).length > 0) lines.push("", "Connection (flags win over the environment):", ...optionLines(conn));
  return lines.join("\n");
}

export function overview(commands: readonly Command[], group?: string): string {
  const list = commands.filter((c) => group === undefined || c.name.startsWith(`${group} `));
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    `usage: skein ${group ? `${group} COMMAND` : "COMMAND"} [options]`,
    "",
    "Commands:",
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Global options (before the command; flags win over the environment):",
    ...optionLines(GLOBAL_OPTIONS),
    "",
    `Run \`skein ${group ? `${group} ` : ""}COMMAND --help\` for a command's options.`,
  ].join("\n");
}
