import { execFile, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { FailedPreconditionError } from "@skein/runtime";

/** The worktree the fleet made for an agent (kept in the state file with its spec). */
export interface Worktree {
  /** Top of the repository's main checkout. */
  readonly repo: string;
  readonly branch: string;
  readonly path: string;
  readonly setupCommand: string;
  /** Where the setup command's output is kept ("" without one). */
  readonly setupLog: string;
  /** The fleet created the branch (a failed start deletes it again). */
  readonly createdBranch: boolean;
}

export interface WorktreeRequest {
  readonly repo: string;
  readonly branch: string;
  readonly base: string;
  readonly setupCommand: string;
}

/** A setup command may install dependencies: minutes, not hours. */
const SETUP_TIMEOUT_MS = 30 * 60_000;
const GIT_TIMEOUT_MS = 120_000;
/** Lines of a failed setup's output put in the error. */
const SETUP_TAIL_LINES = 20;

/** git's own message, for FAILED_PRECONDITION. */
export class GitError extends FailedPreconditionError {}

export function git(cwd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // No prompt for credentials, no pager, no editor: nobody is there to answer.
    const env = { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_PAGER: "cat", GIT_EDITOR: "true", LC_ALL: "C" };
    execFile("git", ["-C", cwd, ...args], { env, timeout: GIT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException;
      if (e.code === "ENOENT") return reject(new FailedPreconditionError("git is not installed or not on the fleet service's PATH; it is needed for worktrees"));
      reject(new GitError(`git ${args[0]}: ${String(stderr).trim() || e.message}`));
    });
  });
}

/**
 * Makes and removes the agents' git worktrees. Where: `<root>/<agent>` with
 * SKEIN_FLEET_WORKTREES_DIR as root, else `.skein-worktrees/<agent>` beside
 * the repository's main checkout.
 */
export class Worktrees {
  constructor(
    private readonly root: string | undefined,
    /** Directory of the kept setup outputs. */
    private readonly logDir: string,
  ) {}

  /**
   * `git worktree add` on a new branch from `base` (or the existing branch),
   * then the setup command in it. Any failure removes what was made (the
   * worktree, a branch it created) and answers FAILED_PRECONDITION with
   * git's (or the setup's) own words.
   */
  async create(agent: string, req: WorktreeRequest): Promise<Worktree> {
    const top = (await git(req.repo, ["rev-parse", "--show-toplevel"])).trim();
    // A worktree of a worktree belongs to the main checkout: place it beside that one.
    const common = (await git(top, ["rev-parse", "--path-format=absolute", "--git-common-dir"])).trim();
    const repo = basename(common) === ".git" ? dirname(common) : top;
    const path = join(this.root ?? join(dirname(repo), ".skein-worktrees"), agent);
    if (existsSync(path)) throw new FailedPreconditionError(`worktree path ${path} already exists (another agent's, or left by hand); remove it or pick another agent name`);
    const branch = req.branch || `skein/${agent}`;
    await git(repo, ["check-ref-format", "--branch", branch]);
    const exists = await git(repo, ["rev-parse", "--verify", "--quiet", `refs/heads/${branch}`]).then(
      () => true,
      () => false,
    );
    if (exists && req.base) throw new FailedPreconditionError(`branch ${branch} already exists; base ${req.base} applies only to a new branch`);
    if (!exists && !req.base) await refuseDirtyBase(top);
    await mkdir(dirname(path), { recursive: true });
    const add = exists ? ["worktree", "add", path, branch] : ["worktree", "add", "-b", branch, path, ...(req.base ? [req.base] : [])];
    await git(repo, add);
    const wt: Worktree = { repo, branch, path, setupCommand: req.setupCommand, setupLog: "", createdBranch: !exists };
    if (!req.setupCommand) return wt;
    const setupLog = join(this.logDir, `${agent}.log`);
    try {
      await runSetup(req.setupCommand, path, setupLog);
    } catch (err) {
      await this.discard(wt);
      throw err;
    }
    return { ...wt, setupLog };
  }

  /** Undoes create() after a later step failed: no worktree, no branch it made. */
  async discard(wt: Worktree): Promise<void> {
    await git(wt.repo, ["worktree", "remove", "--force", "--force", wt.path]).catch(() => rm(wt.path, { recursive: true, force: true }));
    await git(wt.repo, ["worktree", "prune"]).catch(() => undefined);
    if (wt.createdBranch) await git(wt.repo, ["branch", "-D", wt.branch]).catch(() => undefined);
  }

  /** Files with changes (git status --porcelain paths) in the worktree; none when it is gone. */
  async changes(wt: Worktree): Promise<string[]> {
    if (!existsSync(wt.path)) return [];
    const out = await git(wt.path, ["status", "--porcelain", "--untracked-files=all"]);
    return out
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => l.slice(3));
  }

  /**
   * Removes the worktree: refused with the changed files when it has changes,
   * unless `force`. The branch stays (its commits are the agent's work).
   */
  async remove(agent: string, wt: Worktree, force: boolean): Promise<void> {
    const changed = await this.changes(wt);
    if (changed.length > 0 && !force) {
      const shown = changed.slice(0, 50).join(", ");
      throw new FailedPreconditionError(
        `agent ${agent}'s worktree ${wt.path} has changes in ${changed.length} file(s): ${shown}${changed.length > 50 ? ", …" : ""}; commit or discard them, or remove with force (the branch ${wt.branch} stays)`,
      );
    }
    if (existsSync(wt.path)) await git(wt.repo, ["worktree", "remove", ...(force ? ["--force", "--force"] : []), wt.path]);
    else await git(wt.repo, ["worktree", "prune"]);
    if (wt.setupLog) await rm(wt.setupLog, { force: true });
  }
}

/**
 * A new branch without a base starts from the checkout's HEAD: uncommitted
 * changes there would silently stay behind, so the agent would not work on
 * what its person sees. Refused, naming the files; an explicit base says which
 * commit is meant. Untracked files (build output, notes) do not count.
 */
async function refuseDirtyBase(checkout: string): Promise<void> {
  const changed = (await git(checkout, ["status", "--porcelain", "--untracked-files=no"])).split("\n").filter((l) => l !== "").map((l) => l.slice(3));
  if (changed.length === 0) return;
  const shown = changed.slice(0, 20).join(", ");
  throw new FailedPreconditionError(
    `the base checkout ${checkout} has uncommitted changes in ${changed.length} file(s): ${shown}${changed.length > 20 ? ", …" : ""}; a new worktree starts from HEAD without them: commit or stash them, or name the base (--base REF)`,
  );
}

/** Runs the setup command with `sh -c` in the worktree, its output (stdout and stderr) into `logFile`. */
async function runSetup(command: string, cwd: string, logFile: string): Promise<void> {
  await mkdir(dirname(logFile), { recursive: true, mode: 0o700 });
  const out = createWriteStream(logFile, { mode: 0o600 });
  await new Promise<void>((resolve, reject) => out.once("open", () => resolve()).once("error", reject));
  const code = await new Promise<number | string>((resolve) => {
    const child = spawn("sh", ["-c", command], { cwd, stdio: ["ignore", "pipe", "pipe"], timeout: SETUP_TIMEOUT_MS });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.once("error", (err) => resolve(err.message));
    child.once("close", (status, signal) => resolve(signal ?? status ?? 0));
  });
  await new Promise<void>((resolve) => out.end(() => resolve()));
  if (code === 0) return;
  const tail = (await readFile(logFile, "utf8").catch(() => "")).trimEnd().split("\n").slice(-SETUP_TAIL_LINES).join("\n");
  throw new FailedPreconditionError(`setup command failed (${typeof code === "number" ? `exit status ${code}` : code}); worktree removed; its output (kept in ${logFile}):\n${tail}`);
}
