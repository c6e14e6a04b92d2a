import { parseArgs } from "node:util";
import { Connections, settingsFrom, type ConnectionFlags } from "./clients.js";
import { Invocation, type Command, type OptionSpec } from "./command.js";
import { chatCommands } from "./commands/chat.js";
import { fleetCommands } from "./commands/fleet.js";
import { healthCommands } from "./commands/health.js";
import { replyCommands } from "./commands/reply.js";
import { sessionCommands } from "./commands/session.js";
import { sessionFileCommands } from "./commands/session-files.js";
import { CliError, describe, UsageError } from "./errors.js";

export const COMMANDS: readonly Command[] = [...sessionCommands, ...sessionFileCommands, ...chatCommands, ...replyCommands, ...fleetCommands, ...healthCommands];
const GROUPS = new Set(COMMANDS.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]!));

/** Accepted before and after the command words. */
const GLOBAL_OPTIONS = {
  "session-addr": { type: "string" },
  "fleet-addr": { type: "string" },
  token: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-server-name": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} satisfies OptionSpec;

const GLOBAL_HELP = [
  "Global options (flags win over the environment):",
  "  --session-addr A   session service address (SKEIN_SESSION_ADDR, default 127.0.0.1:50051)",
  "  --fleet-addr A     fleet service address (SKEIN_FLEET_ADDR, default 127.0.0.1:50052)",
  "  --token T          bearer token (SKEIN_AUTH_TOKEN)",
  "  --tls-ca F         use TLS, verifying the server against this CA (SKEIN_TLS_CA)",
  "  --tls-cert F       client certificate for mTLS (SKEIN_TLS_CERT), with --tls-key F (SKEIN_TLS_KEY)",
  "  --tls-server-name N  name to expect in the server certificate (SKEIN_TLS_SERVER_NAME)",
  "  --json             machine-readable output where a command supports it",
  "  -h, --help         help for any command",
];

function commandHelp(c: Command): string {
  return [`usage: skein ${c.name}${c.synopsis ? ` ${c.synopsis}` : ""}`, "", `${c.summary}.`, ...(c.details?.length ? ["", ...c.details] : []), ...(c.json ? ["", "--json  print JSON instead of text"] : []), "", ...GLOBAL_HELP].join("\n");
}

function overview(group?: string): string {
  const list = COMMANDS.filter((c) => group === undefined || c.name.startsWith(`${group} `));
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    `usage: skein ${group ?? "COMMAND"} ${group ? "COMMAND " : ""}[options]`,
    "",
    "Commands:",
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    ...GLOBAL_HELP,
    "",
    "Run `skein COMMAND --help` for a command's options.",
  ].join("\n");
}

const valueOptions = new Set(Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === "string").map(([k]) => k));

/** Where the command words start: global options may come first. */
function commandStart(argv: readonly string[]): { index: number; help: boolean } {
  let i = 0;
  let help = false;
  while (i < argv.length && argv[i]!.startsWith("-") && argv[i] !== "--") {
    const arg = argv[i]!;
    const name = arg.replace(/^--?/, "").split("=")[0]!;
    if (name === "help" || name === "h") help = true;
    else if (valueOptions.has(name) && !arg.includes("=")) i++;
    else if (name !== "json" && !valueOptions.has(name)) throw new UsageError(`unknown option ${arg.split("=")[0]}`, "");
    i++;
  }
  return { index: i, help };
}

type Found = { command: Command; words: number } | { help: string; ok: boolean };

function find(argv: readonly string[], start: number, help: boolean): Found {
  const first = argv[start];
  if (first === undefined || first === "help") {
    const topic = first === "help" ? argv.slice(start + 1).join(" ") : "";
    const c = COMMANDS.find((x) => x.name === topic);
    if (c) return { help: commandHelp(c), ok: true };
    return { help: overview(GROUPS.has(topic) ? topic : undefined), ok: help || first === "help" };
  }
  if (GROUPS.has(first)) {
    const second = argv[start + 1];
    if (second === undefined || second.startsWith("-")) return { help: overview(first), ok: help || second === "--help" || second === "-h" };
    const c = COMMANDS.find((x) => x.name === `${first} ${second}`);
    if (!c) throw new UsageError(`unknown command '${first} ${second}'`, first);
    return { command: c, words: 2 };
  }
  const c = COMMANDS.find((x) => x.name === first);
  if (!c) throw new UsageError(`unknown command '${first}'`, "");
  return { command: c, words: 1 };
}

function parse(c: Command, args: string[]) {
  try {
    const { values, tokens } = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...c.options }, allowPositionals: true, strict: true, tokens: true });
    const terminator = tokens.find((t) => t.kind === "option-terminator")?.index;
    const before = tokens.filter((t) => t.kind === "positional" && (terminator === undefined || t.index < terminator)).map((t) => (t.kind === "positional" ? t.value : ""));
    const after = terminator === undefined ? undefined : args.slice(terminator + 1);
    return { values: values as Record<string, string | boolean | (string | boolean)[] | undefined>, positionals: before, rest: after };
  } catch (err) {
    // parseArgs explains itself in its first sentence.
    throw new UsageError((err as Error).message.split(". ")[0]!.replace(/\.$/, ""), c.name);
  }
}

/** Runs the CLI; resolves with the exit code. Errors are printed as one line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  let conn: Connections | undefined;
  try {
    const { index, help } = commandStart(argv);
    const found = find(argv, index, help);
    if ("help" in found) {
      (found.ok ? process.stdout : process.stderr).write(`${found.help}\n`);
      return found.ok ? 0 : 2;
    }
    const { command, words } = found;
    const { values, positionals, rest } = parse(command, [...argv.slice(0, index), ...argv.slice(index + words)]);
    if (values.help === true) {
      process.stdout.write(`${commandHelp(command)}\n`);
      return 0;
    }
    if (values.json === true && !command.json) throw new UsageError(`--json is not supported by 'skein ${command.name}'`, command.name);
    conn = new Connections(settingsFrom(values as ConnectionFlags));
    return await command.run(new Invocation(command, values, positionals, rest, conn));
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
