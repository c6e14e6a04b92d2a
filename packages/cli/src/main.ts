import { parseArgs } from "node:util";
import { Connections, settingsFrom, type ConnectionFlags } from "./clients.js";
import { Invocation, type Command } from "./command.js";
import { chatCommands } from "./commands/chat.js";
import { fleetCommands } from "./commands/fleet.js";
import { healthCommands } from "./commands/health.js";
import { metaCommands } from "./commands/meta.js";
import { replyCommands } from "./commands/reply.js";
import { sessionCommands } from "./commands/session.js";
import { sessionFileCommands } from "./commands/session-files.js";
import { CliError, describe, UsageError } from "./errors.js";
import { commandHelp, GLOBAL_OPTIONS, overview } from "./help.js";
import { commandOptions, toParseArgs, type Options } from "./options.js";
import { VERSION } from "./version.js";

export const COMMANDS: readonly Command[] = [...sessionCommands, ...sessionFileCommands, ...chatCommands, ...replyCommands, ...fleetCommands, ...healthCommands, ...metaCommands(() => COMMANDS)];
export const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]!));

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** The global options before the command words, and where the words start. */
function parseGlobals(argv: readonly string[]): { values: Values; index: number } {
  const takesValue = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === "string").map(([n]) => n));
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith("-") && argv[i] !== "--" && argv[i] !== "-") {
    const arg = argv[i]!;
    // An unknown option is reported by parseArgs below, with its own wording.
    if (arg.startsWith("--") && !arg.includes("=") && takesValue.has(arg.slice(2))) i++;
    i++;
  }
  const { values } = parseOrUsage(argv.slice(0, i), GLOBAL_OPTIONS, "");
  return { values, index: i };
}

function parseOrUsage(args: readonly string[], options: Options, command: string) {
  try {
    const r = parseArgs({ args: [...args], options: toParseArgs(options), allowPositionals: true, strict: true, tokens: true });
    return { values: r.values as Values, tokens: r.tokens };
  } catch (err) {
    // parseArgs explains itself in its first sentence.
    throw new UsageError((err as Error).message.split(". ")[0]!.replace(/\.$/, ""), command);
  }
}

type Found = { command: Command; words: number } | { help: string; ok: boolean };

function find(argv: readonly string[], start: number, help: boolean): Found {
  const first = argv[start];
  if (first === undefined || first === "help") {
    const topic = first === "help" ? argv.slice(start + 1).join(" ") : "";
    const c = COMMANDS.find((x) => x.name === topic);
    if (c) return { help: commandHelp(c), ok: true };
    return { help: overview(COMMANDS, GROUPS.has(topic) ? topic : undefined), ok: help || first === "help" };
  }
  if (GROUPS.has(first)) {
    const second = argv[start + 1];
    if (second === undefined || second.startsWith("-")) return { help: overview(COMMANDS, first), ok: help || second === "--help" || second === "-h" };
    const c = COMMANDS.find((x) => x.name === `${first} ${second}`);
    if (!c) throw new UsageError(`unknown command '${first} ${second}'`, first);
    return { command: c, words: 2 };
  }
  const c = COMMANDS.find((x) => x.name === first);
  if (!c) throw new UsageError(`unknown command '${first}'`, "");
  return { command: c, words: 1 };
}

function parseCommand(c: Command, args: readonly string[]) {
  const { values, tokens } = parseOrUsage(args, commandOptions(c), c.name);
  const terminator = tokens.find((t) => t.kind === "option-terminator")?.index;
  const positionals = tokens.filter((t) => t.kind === "positional" && (terminator === undefined || t.index < terminator)).map((t) => (t.kind === "positional" ? t.value : ""));
  const rest = terminator === undefined ? undefined : args.slice(terminator + 1);
  return { values, positionals, rest };
}

/** Runs the CLI; resolves with the exit code. Errors are printed as one line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  let conn: Connections | undefined;
  try {
    const globals = parseGlobals(argv);
    if (globals.values.version === true) {
      process.stdout.write(`skein ${VERSION}\n`);
      return 0;
    }
    const found = find(argv, globals.index, globals.values.help === true);
    if ("help" in found) {
      (found.ok ? process.stdout : process.stderr).write(`${found.help}\n`);
      return found.ok ? 0 : 2;
    }
    const { command, words } = found;
    const own = parseCommand(command, argv.slice(globals.index + words));
    if (own.values.help === true || globals.values.help === true) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return 0;
    }
    if (globals.values.json === true && command.options?.json === undefined) throw new UsageError(`--json is not supported by 'skein ${command.name}'`, command.name);
    // Options after the command words win over the same ones before them.
    const values = { ...globals.values, ...own.values };
    conn = new Connections(settingsFrom(values as ConnectionFlags));
    return await command.run(new Invocation(command, values, own.positionals, own.rest, conn));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`skein: ${err.message} (see 'skein ${err.command ? `${err.command} ` : ""}--help')\n`);
      return err.exitCode;
    }
    process.stderr.write(`skein: ${describe(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  } finally {
    conn?.closeAll();
  }
}
