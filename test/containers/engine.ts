import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";

/**
 * The container engine the test drives: docker when its daemon answers, else
 * podman (with `podman compose`, else podman-compose). Everything the test
 * makes carries the compose project's label, so cleanup finds it by label.
 */
export interface Engine {
  readonly name: "docker" | "podman";
  /** The compose command: ["docker", "compose"], ["podman", "compose"] or ["podman-compose"]. */
  readonly compose: readonly string[];
  /** One line: what was used, with versions. */
  readonly describe: string;
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const TIMEOUT_MS = 20 * 60_000;

/** The caller's environment without settings compose would interpolate (tests never read the caller's SKEIN_ or provider variables). */
function callerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SKEIN|POSTGRES|OPENAI|ANTHROPIC|OLLAMA|COMPOSE)_/.test(k)));
}

export function run(cmd: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Run {
  const r = spawnSync(cmd[0]!, cmd.slice(1), {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...callerEnv(), ...opts.env },
    timeout: opts.timeoutMs ?? TIMEOUT_MS,
    input: opts.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

/** Runs and throws with the command's output when it fails. */
export function must(cmd: readonly string[], opts: Parameters<typeof run>[1] = {}): string {
  const r = run(cmd, opts);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} exited ${r.status}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r.stdout;
}

const works = (cmd: readonly string[]) => run(cmd, { timeoutMs: 30_000 }).status === 0;
const firstLine = (cmd: readonly string[]) => run(cmd, { timeoutMs: 30_000 }).stdout.trim().split("\n")[0] ?? "";

export function detectEngine(): Engine {
  if (works(["docker", "info"]) && works(["docker", "compose", "version"])) {
    return { name: "docker", compose: ["docker", "compose"], describe: `docker ${firstLine(["docker", "version", "--format", "{{.Server.Version}}"])} with ${firstLine(["docker", "compose", "version"])}` };
  }
  if (!works(["podman", "version"])) throw new Error("neither docker (with a running daemon) nor podman is available: install one (.ci/run installs podman)");
  const podman = firstLine(["podman", "version", "--format", "{{.Client.Version}}"]);
  const runtime = firstLine(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"]);
  // `podman compose` (4.7+) hands over to an external provider; podman-compose directly otherwise.
  if (works(["podman", "compose", "version"])) return { name: "podman", compose: ["podman", "compose"], describe: `podman ${podman} (${runtime}) with podman compose` };
  if (works(["podman-compose", "version"])) {
    const version = run(["podman-compose", "version"]).stdout.match(/podman-composer? version\s+(\S+)/)?.[1] ?? "?";
    return { name: "podman", compose: ["podman-compose"], describe: `podman ${podman} (${runtime}) with podman-compose ${version}` };
  }
  throw new Error("podman is here but no compose: install podman-compose (.ci/run does)");
}

/** The host's address as containers see it, for host.docker.internal where host-gateway is unknown (podman < 4.7). */
export function hostGateway(engine: Engine): string | undefined {
  if (engine.name === "docker") return undefined;
  const [major, minor] = firstLine(["podman", "version", "--format", "{{.Client.Version}}"]).split(".").map(Number);
  if (major! > 4 || (major === 4 && minor! >= 7)) return undefined;
  const route = firstLine(["ip", "-4", "route", "get", "1.1.1.1"]);
  const src = route.match(/\bsrc (\d+\.\d+\.\d+\.\d+)/)?.[1];
  if (!src) throw new Error(`cannot find the host's address for host.docker.internal (ip route get: ${route})`);
  return src;
}

/**
 * One compose project: a name of its own and the settings it reads. The
 * compose file runs from a directory of its own holding a .env with exactly
 * those settings (podman-compose 1.0 lets a .env beside the file override the
 * environment, and has no --env-file): the developer's .env never leaks in.
 * deploy/ is linked there for the files the compose file mounts.
 */
export class ComposeProject {
  private readonly dir = mkdtempSync(join(tmpdir(), "skein-containers-"));
  readonly file: string;
  removed = false;

  constructor(
    private readonly engine: Engine,
    composeFile: string,
    readonly project: string,
    readonly env: Record<string, string>,
  ) {
    this.file = join(this.dir, composeFile);
    copyFileSync(join(repoRoot, composeFile), this.file);
    symlinkSync(join(repoRoot, "deploy"), join(this.dir, "deploy"));
    writeFileSync(join(this.dir, ".env"), Object.entries(env).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
  }

  private composeCmd(args: readonly string[]): string[] {
    return [...this.engine.compose, "-p", this.project, "-f", this.file, ...args];
  }

  compose(args: readonly string[], timeoutMs?: number): string {
    return must(this.composeCmd(args), { env: this.env, timeoutMs });
  }

  /** The containers of a service (one per replica), by the compose labels both engines set, in name order. */
  containers(service: string): string[] {
    const names = must([this.engine.name, "ps", "-a", "--filter", `label=com.docker.compose.project=${this.project}`, "--filter", `label=com.docker.compose.service=${service}`, "--format", "{{.Names}}"]).trim();
    if (!names) throw new Error(`no container for service ${service} of ${this.project}`);
    return names.split("\n").sort();
  }

  container(service: string): string {
    return this.containers(service)[0]!;
  }

  exec(service: string, cmd: readonly string[]): Run {
    return run([this.engine.name, "exec", this.container(service), ...cmd], { timeoutMs: 60_000 });
  }

  /** Runs the service's own healthcheck now (podman runs them only under systemd timers; docker on its own schedule). */
  healthcheck(service: string): Run {
    const ctr = this.container(service);
    if (this.engine.name === "podman") return run(["podman", "healthcheck", "run", ctr], { timeoutMs: 60_000 });
    const state = run(["docker", "inspect", "--format", "{{.State.Health.Status}}", ctr]);
    return { ...state, status: state.stdout.trim() === "healthy" ? 0 : 1 };
  }

  /** The last lines of every container's log, for a failed step's report. */
  logs(lines = 40): string {
    const names = run([this.engine.name, "ps", "-a", "--filter", `label=com.docker.compose.project=${this.project}`, "--format", "{{.Names}}"]).stdout.split("\n").filter(Boolean);
    return names.map((n) => { const r = run([this.engine.name, "logs", "--tail", String(lines), n]); return `--- ${n}\n${r.stdout}${r.stderr}`; }).join("\n");
  }

  /** Down with volumes, then whatever still carries the project's label. */
  remove(): void {
    run(this.composeCmd(["down", "-v", "-t", "5"]), { env: this.env, timeoutMs: 180_000 });
    const label = `label=com.docker.compose.project=${this.project}`;
    const left = (kind: "ps" | "volume" | "network") =>
      run([this.engine.name, ...(kind === "ps" ? ["ps", "-a", "-q"] : [kind, "ls", "-q"]), "--filter", label]).stdout.split("\n").filter(Boolean);
    const ctrs = left("ps");
    if (ctrs.length) run([this.engine.name, "rm", "-f", ...ctrs]);
    const vols = left("volume");
    if (vols.length) run([this.engine.name, "volume", "rm", "-f", ...vols]);
    const nets = left("network");
    if (nets.length) run([this.engine.name, "network", "rm", ...nets]);
    rmSync(this.dir, { recursive: true, force: true });
    this.removed = true;
  }
}
