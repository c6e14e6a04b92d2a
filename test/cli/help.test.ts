import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { haveProgram, repoRoot } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { commandHelp } from "../../packages/cli/src/help.js";
import { COMMANDS } from "../../packages/cli/src/main.js";
import { killClis, runCli } from "./cli.js";

const run = promisify(execFile);
afterEach(() => killClis());

/** The option names a help text lists, in order. */
function listedOptions(help: string): string[] {
  return [...help.matchAll(/^ {2}(?:-\w, )?\s*--([\w-]+)/gm)].map((m) => m[1]!);
}

const VERSION = (JSON.parse(readFileSync(`${repoRoot}packages/cli/package.json`, "utf8")) as { version: string }).version;

describe("skein --version", () => {
  it("prints the package version for --version, -V and `version`, exit 0", async () => {
    for (const args of [["--version"], ["-V"], ["version"]]) {
      const r = await runCli(args);
      expect(r, args.join(" ")).toMatchObject({ code: 0, stdout: `skein ${VERSION}\n`, stderr: "" });
    }
  });
});

describe("help", () => {
  it("lists each option of a command exactly once, and only the connection options of the services it calls", () => {
    for (const c of COMMANDS) {
      const names = listedOptions(commandHelp(c));
      expect(new Set(names).size, `${c.name}: ${names.join(" ")}`).toBe(names.length);
      expect(names).toContain("help");
      const talksTo = (s: string) => c.services.includes(s as "session" | "fleet");
      expect(names.includes("session-addr"), c.name).toBe(talksTo("session"));
      expect(names.includes("fleet-addr"), c.name).toBe(talksTo("fleet"));
      expect(names.includes("token"), c.name).toBe(c.services.length > 0);
      expect(names.includes("json"), c.name).toBe(c.options?.json !== undefined);
    }
  });

  it("a session command's help has no fleet options, and an option of another command is refused", async () => {
    const r = await runCli(["session", "ls", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/--json/g)).toHaveLength(1);
    expect(r.stdout).not.toMatch(/--fleet-addr|--restart|--grace/);
    const refused = await runCli(["session", "ls", "--fleet-addr", "127.0.0.1:1"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe("skein: Unknown option '--fleet-addr' (see 'skein session ls --help')\n");
  });

  it("connection options before the command apply to any command", async () => {
    // --fleet-addr is not a session option, yet global before the words; the session address is unreachable.
    const r = await runCli(["--fleet-addr", "127.0.0.1:1", "--session-addr", "127.0.0.1:1", "session", "ls"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("session service not reachable at 127.0.0.1:1");
  });
});

describe("skein completion", () => {
  async function script(shell: "bash" | "zsh"): Promise<string> {
    const r = await runCli(["completion", shell]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  }

  /** What bash's completion function offers for the words, the last one being completed. */
  async function bashComplete(src: string, words: string[]): Promise<string[]> {
    const prog = `source /dev/stdin <<'SKEIN_EOF'\n${src}\nSKEIN_EOF\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _skein; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await run("bash", ["--norc", "--noprofile", "-c", prog], { cwd: repoRoot });
    return stdout.split("\n").filter((l) => l !== "");
  }

  it("bash: completes commands, subcommands, each command's own options and option values", async () => {
    const src = await script("bash");
    expect(await bashComplete(src, ["skein", ""])).toEqual(["session", "chat", "send", "watch", "fleet", "health", "version", "completion", "help"]);
    expect(await bashComplete(src, ["skein", "fleet", "st"])).toEqual(["start", "stop"]);
    expect(await bashComplete(src, ["skein", "fleet", "start", "--restart", ""])).toEqual(["never", "on-failure", "always"]);
    expect(await bashComplete(src, ["skein", "fleet", "logs", "-n", "5", "--"])).toEqual(["--lines", "--follow", "--json", "--fleet-addr", "--token", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name", "--help"]);
    // A session command offers no fleet option.
    expect(await bashComplete(src, ["skein", "session", "ls", "--fl"])).toEqual([]);
    // Global options before the command do not hide the command words.
    expect(await bashComplete(src, ["skein", "--session-addr", "127.0.0.1:1", "session", ""])).toEqual(["new", "ls", "show", "rm", "mode", "approvals", "approve", "deny", "import", "export"]);
    expect(await bashComplete(src, ["skein", "completion", ""])).toEqual(["bash", "zsh"]);
    expect(await bashComplete(src, ["skein", "help", "fleet", "l"])).toEqual(["ls", "logs"]);
    // --dir completes directories.
    expect(await bashComplete(src, ["skein", "session", "new", "--dir", "packa"])).toEqual(["packages"]);
  });

  // Without zsh this skips; npm test's preflight says what to install.
  it.skipIf(!haveProgram("zsh"))("zsh: the same completions through zsh's compadd and _files", async () => {
    const src = await script("zsh");
    // Outside a completion widget: compadd and _files print what they were given.
    const prog = `compdef() { :; }\nsource /dev/stdin <<'SKEIN_EOF'\n${src}\nSKEIN_EOF
compadd() { [[ $1 == -a ]] && print -rl -- "\${(@P)2}"; }
_files() { print -r -- "FILES $*"; }
t() { words=("$@"); CURRENT=\${#words}; _skein; print -- '--'; }
t skein ''
t skein fleet start --restart ''
t skein session ls --
t skein fleet start --dir ''`;
    const { stdout } = await run("zsh", ["-f", "-c", prog]);
    const [top, restart, opts, dir] = stdout.split("--\n").map((b) => b.trimEnd().split("\n"));
    expect(top).toEqual(["session", "chat", "send", "watch", "fleet", "health", "version", "completion", "help"]);
    expect(restart).toEqual(["never", "on-failure", "always"]);
    expect(opts).toEqual(["--json", "--session-addr", "--token", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name", "--help"]);
    expect(dir).toEqual(["FILES -/"]);
  });

  it("refuses an unknown shell with exit 2", async () => {
    const r = await runCli(["completion", "fish"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("skein: shell must be bash or zsh, got \"fish\" (see 'skein completion --help')\n");
  });
});

describe("skein-fleet-start --help", () => {
  it("exits 0 and lists every MOSAIC_* variable the command reads", async () => {
    const { stdout } = await run(process.execPath, [`${repoRoot}packages/cli/bin/skein-fleet-start.js`, "--help"]);
    const read = new Set(readFileSync(`${repoRoot}packages/cli/src/fleet-start.ts`, "utf8").match(/(?<=set\(")MOSAIC_\w+/g));
    expect(read.size).toBeGreaterThanOrEqual(7);
    for (const v of read) expect(stdout, v).toMatch(new RegExp(`^  ${v} `, "m"));
    expect(stdout).toMatch(/^usage: skein-fleet-start AGENT/);
  });
});
