import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { delimiter, join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { shellQuote } from "../../packages/cli/src/format.js";

/** The checked-in bin, as `npx skein` runs it (build first: npx tsc -b packages/cli). */
export const CLI = `${repoRoot}packages/cli/bin/skein.js`;

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliProcess {
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout (or stderr) matches, with everything so far. */
  waitFor(match: RegExp, stream?: "stdout" | "stderr", timeoutMs?: number): Promise<string>;
  readonly result: Promise<CliResult>;
}

const children = new Set<ChildProcess>();

/** Kills what a failing test left running. */
export function killClis(): void {
  for (const c of children) c.kill("SIGKILL");
  children.clear();
}

/**
 * The test's own SKEIN_* settings must not leak into the CLI: each test says
 * what it means. The CLI runs as from a shell with `skein` on its PATH (as
 * after `npm link`), whether vitest runs under npm or not, so its hints read
 * `skein ...`; a test may give its own PATH.
 */
function cliEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("SKEIN_") && !k.startsWith("npm_")) out[k] = v;
  out.PATH = `${repoRoot}node_modules/.bin${delimiter}${process.env.PATH ?? ""}`;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export function spawnCli(args: readonly string[], env: Record<string, string | undefined> = {}, opts: { cwd?: string; terminal?: boolean } = {}): CliProcess {
  const argv = [process.execPath, CLI, ...args];
  // util-linux `script` runs the CLI on a pseudo-terminal: keys we write arrive as typed (Ctrl-C as \x03).
  const [cmd, ...rest] = opts.terminal ? ["script", "-q", "-e", "-c", argv.map(shellQuote).join(" "), "/dev/null"] : argv;
  const proc = spawn(cmd!, rest, { env: cliEnv(opts.terminal ? { TERM: "dumb", ...env } : env), cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
  children.add(proc);
  const out = { stdout: "", stderr: "" };
  const waiters = new Set<() => void>();
  const onData = (which: "stdout" | "stderr") => (d: Buffer) => {
    out[which] += d.toString("utf8");
    for (const w of waiters) w();
  };
  proc.stdout!.on("data", onData("stdout"));
  proc.stderr!.on("data", onData("stderr"));
  // Both pipes drained before the result is read.
  const result = Promise.all([once(proc, "close"), once(proc.stdout!, "end").catch(() => undefined)]).then(([[code, signal]]) => {
    children.delete(proc);
    return { code: code as number | null, signal: signal as NodeJS.Signals | null, stdout: out.stdout, stderr: out.stderr };
  });
  const waitFor = (match: RegExp, stream: "stdout" | "stderr" = "stdout", timeoutMs = 15_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!match.test(out[stream])) return;
        cleanup();
        resolve(out[stream]);
      };
      const t = setTimeout(() => {
        cleanup();
        reject(new Error(`CLI ${stream} did not match ${match} within ${timeoutMs} ms:\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(t);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  return { proc, stdout: () => out.stdout, stderr: () => out.stderr, waitFor, result };
}

/** Whether `script` (util-linux) is there to give the CLI a terminal. */
export function haveScript(): boolean {
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Runs the CLI to its end, with `input` on stdin (closed either way). */
export async function runCli(args: readonly string[], env: Record<string, string | undefined> = {}, opts: { input?: string; cwd?: string } = {}): Promise<CliResult> {
  const c = spawnCli(args, env, opts);
  c.proc.stdin!.end(opts.input ?? "");
  return c.result;
}

/** A CLI failure must be one line on stderr, never a stack trace. */
export function expectOneLineError(r: CliResult): string {
  const lines = r.stderr.trimEnd().split("\n");
  if (lines.length !== 1 || !lines[0]!.startsWith("skein: ") || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected one "skein: …" line on stderr, got:\n${r.stderr}`);
  }
  return lines[0]!;
}

/** A session service in its own home under `dir`, talking to a fake OpenAI-compatible model at `modelURL`. */
export function sessionServiceEnv(dir: string, modelURL: string): Record<string, string> {
  return {
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, "config"),
    SKEIN_SESSIONS_DIR: join(dir, "sessions"),
    SKEIN_PROVIDER: "openai",
    SKEIN_MODEL: "fake-model",
    OPENAI_BASE_URL: modelURL,
    OPENAI_API_KEY: "test-key",
    SKEIN_PROVIDER_MAX_RETRIES: "0",
  };
}
