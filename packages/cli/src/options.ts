/**
 * The option model: every option a command takes, described once, so parsing,
 * help and shell completion agree on exactly which options a command has.
 */
import type { ParseArgsConfig } from "node:util";
import type { ServiceName } from "./clients.js";

export interface OptionDef {
  readonly type: "string" | "boolean";
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's placeholder in help, e.g. "D" in `--dir D`. */
  readonly value?: string;
  readonly help: string;
  /** The only values it takes; shell completion offers them. */
  readonly choices?: readonly string[];
  /** What shell completion offers for the value. */
  readonly complete?: "file" | "directory";
}

export type Options = Readonly<Record<string, OptionDef>>;

export const HELP_OPTION: Options = { help: { type: "boolean", short: "h", help: "show this help" } };

/** `--json`, with what it prints for this command. */
export function jsonOption(help = "print JSON instead of text (every field, zero and empty values included)"): Options {
  return { json: { type: "boolean", help } };
}

const ADDRESS: Record<ServiceName, Options> = {
  session: { "session-addr": { type: "string", value: "A", help: "session service address (SKEIN_SESSION_ADDR, default 127.0.0.1:50051)" } },
  fleet: { "fleet-addr": { type: "string", value: "A", help: "fleet service address (SKEIN_FLEET_ADDR, default 127.0.0.1:50052)" } },
};

const CREDENTIALS: Options = {
  token: { type: "string", value: "T", help: "bearer token (SKEIN_AUTH_TOKEN)" },
  "tls-ca": { type: "string", value: "F", help: "use TLS, verifying the server against this CA (SKEIN_TLS_CA)", complete: "file" },
  "tls-cert": { type: "string", value: "F", help: "client certificate for mTLS (SKEIN_TLS_CERT), with --tls-key", complete: "file" },
  "tls-key": { type: "string", value: "F", help: "client key for mTLS (SKEIN_TLS_KEY)", complete: "file" },
  "tls-server-name": { type: "string", value: "N", help: "name to expect in the server certificate (SKEIN_TLS_SERVER_NAME)" },
};

/** The connection options of a command that talks to `services`; none for a command that talks to none. */
export function connectionOptions(services: readonly ServiceName[]): Options {
  if (services.length === 0) return {};
  return Object.assign({}, ...services.map((s) => ADDRESS[s]), CREDENTIALS) as Options;
}

/** Every connection option: accepted before the command words, whatever the command. */
export const GLOBAL_CONNECTION_OPTIONS = connectionOptions(["session", "fleet"]);

export function toParseArgs(options: Options): NonNullable<ParseArgsConfig["options"]> {
  const out: NonNullable<ParseArgsConfig["options"]> = {};
  for (const [name, o] of Object.entries(options)) out[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  return out;
}

/** `-n, --lines N`; long-only options line up with the long forms when the list has short ones. */
function optionLabel(name: string, o: OptionDef, indentLong: boolean): string {
  const long = `--${name}${o.type === "string" ? ` ${o.value ?? "V"}` : ""}`;
  if (o.short) return `-${o.short}, ${long}`;
  return indentLong ? `    ${long}` : long;
}

/** Help lines, labels aligned; a repeatable option says so. */
export function optionLines(options: Options): string[] {
  const entries = Object.entries(options);
  const indentLong = entries.some(([, o]) => o.short);
  const labels = entries.map(([n, o]) => optionLabel(n, o, indentLong));
  const width = Math.max(...labels.map((l) => l.length));
  return entries.map(([, o], i) => `  ${labels[i]!.padEnd(width)}  ${o.help}${o.multiple ? " (repeatable)" : ""}`);
}

/**
 * Everything a command accepts after its words: its own options, its services' connection options, --help.
 * Takes the two fields of a Command it reads (not Command itself: command.ts imports Options from here).
 */
export function commandOptions(c: { readonly options?: Options; readonly services: readonly ServiceName[] }): Options {
  return { ...c.options, ...connectionOptions(c.services), ...HELP_OPTION };
}
