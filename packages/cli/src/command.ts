import type { Connections, ServiceName } from "./clients.js";
import { UsageError } from "./errors.js";
import type { Options } from "./options.js";

type Value = string | boolean | (string | boolean)[] | undefined;

/** What a command runs with: parsed arguments and lazily opened connections. */
export class Invocation {
  constructor(
    readonly command: Command,
    readonly values: Record<string, Value>,
    /** Positionals before a `--`. */
    readonly positionals: readonly string[],
    /** Words after a `--`, undefined without one. */
    readonly rest: readonly string[] | undefined,
    readonly conn: Connections,
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  /** The positional at `i`, named `name` in the error when missing. */
  arg(i: number, name: string): string {
    const v = this.positionals[i];
    if (v === undefined || v === "") throw this.usage(`missing ${name}`);
    return v;
  }

  optionalArg(i: number): string | undefined {
    return this.positionals[i];
  }

  /** Refuses positionals beyond the `max` the command takes. */
  atMost(max: number): void {
    const extra = this.positionals.slice(max);
    if (extra.length > 0) throw this.usage(`unexpected argument ${JSON.stringify(extra[0])}`);
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }

  strings(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** A whole number option within [min, max], or undefined when not given. */
  int(name: string, min: number, max: number): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw this.usage(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    return Number(raw);
  }

  usage(message: string): UsageError {
    return new UsageError(message, this.command.name);
  }
}

export interface Command {
  /** Words that select it, e.g. "fleet start". */
  readonly name: string;
  /** Arguments after the name, for the usage line. */
  readonly synopsis: string;
  readonly summary: string;
  /** Further lines of help: behaviour, examples (options describe themselves). */
  readonly details?: readonly string[];
  /** Its own options (`--json` among them when it has a JSON output); not the connection options. */
  readonly options?: Options;
  /** Words shell completion offers for its arguments. */
  readonly argChoices?: readonly string[];
  /** The services it calls: it takes their connection options, and only those. */
  readonly services: readonly ServiceName[];
  /** Resolves with the exit code. */
  run(inv: Invocation): Promise<number>;
}

/** Prints a line to stdout. */
export function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}
