import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { fleet } from "@skein/proto";
import { call, rejection } from "@skein/testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

let h: FleetHarness;
let repo: string;
afterEach(async () => {
  await h?.cleanup();
});

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", ["-C", cwd, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

beforeEach(async () => {
  h = await new FleetHarness().start();
  repo = join(h.dir, "repo");
  mkdirSync(repo);
  git(repo, "init", "-q", "-b", "main");
  writeFileSync(join(repo, "README"), "hello\n");
  git(repo, "add", "README");
  git(repo, "commit", "-q", "-m", "first");
});

const remove = (name: string, force = false) => call(h.client, h.client.removeAgent, fleet.RemoveAgentRequest.fromPartial({ name, force }));
const stop = (name: string) => call(h.client, h.client.stopAgent, { name, graceSeconds: 1 });
const branchExists = (b: string) => git(repo, "branch", "--list", b).trim() !== "";
const worktreePaths = () => git(repo, "worktree", "list", "--porcelain").split("\n").filter((l) => l.startsWith("worktree ")).map((l) => l.slice(9));

describe("worktrees", () => {
  it("each agent gets its own worktree and branch; setup output is kept; a dirty one is refused, force removes it and keeps the branch", async () => {
    const a = (
      await h.startAgent({
        name: "one",
        workdir: "",
        command: "sh -c 'echo work > by-agent.txt; exec sleep 100000'",
        worktree: { repo, branch: "", base: "", setupCommand: "echo installing deps; pwd" },
      })
    ).agent!;
    const path = join(h.dir, ".skein-worktrees", "one");
    expect(a.workdir).toBe(path);
    expect(a.worktree).toMatchObject({ repo, branch: "skein/one", path, setupCommand: "echo installing deps; pwd" });
    expect(readFileSync(a.worktree!.setupLog, "utf8")).toBe(`installing deps\n${path}\n`);
    expect(worktreePaths()).toContain(path);
    expect(git(path, "rev-parse", "--abbrev-ref", "HEAD").trim()).toBe("skein/one");
    await waitFor("the agent's file", () => existsSync(join(path, "by-agent.txt")));

    // A second agent never shares it.
    const b = (await h.startAgent({ name: "two", workdir: "", command: "sleep 100000", worktree: { repo, branch: "", base: "", setupCommand: "" } })).agent!;
    expect(b.workdir).toBe(join(h.dir, ".skein-worktrees", "two"));
    expect(b.worktree!.setupLog).toBe("");

    await stop("one");
    const refused = await rejection(remove("one"));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.details).toContain("by-agent.txt");
    expect(existsSync(path)).toBe(true);
    expect((await h.getAgent("one")).name).toBe("one");

    await remove("one", true);
    expect(existsSync(path)).toBe(false);
    expect(worktreePaths()).not.toContain(path);
    expect(branchExists("skein/one")).toBe(true);
    expect(existsSync(a.worktree!.setupLog)).toBe(false);

    // A clean one goes without force.
    await stop("two");
    await remove("two");
    expect(existsSync(b.workdir)).toBe(false);

    // The name reused: a fresh worktree (on the branch that stayed), without the old untracked file.
    const again = (await h.startAgent({ name: "one", workdir: "", command: "sleep 100000", worktree: { repo, branch: "", base: "", setupCommand: "" } })).agent!;
    expect(again.workdir).toBe(path);
    expect(existsSync(join(path, "by-agent.txt"))).toBe(false);
  });

  it("git errors answer FAILED_PRECONDITION with git's message and leave nothing behind", async () => {
    const notRepo = join(h.dir, "plain");
    mkdirSync(notRepo);
    const start = (name: string, worktree: Partial<fleet.WorktreeRequest>) =>
      rejection(h.startAgent({ name, workdir: "", command: "sleep 100000", worktree: fleet.WorktreeRequest.fromPartial(worktree) }));

    const e1 = await start("a1", { repo: notRepo });
    expect(e1.code).toBe(status.FAILED_PRECONDITION);
    expect(e1.details).toMatch(/not a git repository/);

    // main is checked out in the repository itself.
    const e2 = await start("a2", { repo, branch: "main" });
    expect(e2.code).toBe(status.FAILED_PRECONDITION);
    expect(e2.details).toMatch(/already (checked out|used by worktree)/);

    const e3 = await start("a3", { repo, base: "no-such-ref" });
    expect(e3.code).toBe(status.FAILED_PRECONDITION);
    expect(e3.details).toContain("no-such-ref");
    expect(branchExists("skein/a3")).toBe(false);

    const e4 = await start("a4", { repo, setupCommand: "echo boom; exit 4" });
    expect(e4.code).toBe(status.FAILED_PRECONDITION);
    expect(e4.details).toContain("exit status 4");
    expect(e4.details).toContain("boom");
    expect(branchExists("skein/a4")).toBe(false);

    // A dirty base: uncommitted changes in the checkout a new branch would start from.
    writeFileSync(join(repo, "README"), "edited, not committed\n");
    writeFileSync(join(repo, "scratch.txt"), "untracked files do not count\n");
    const e5 = await start("a5", { repo });
    expect(e5.code).toBe(status.FAILED_PRECONDITION);
    expect(e5.details).toMatch(/uncommitted changes in 1 file\(s\): README/);
    expect(branchExists("skein/a5")).toBe(false);
    // Naming the base says which commit is meant.
    await h.startAgent({ name: "a6", workdir: "", command: "sleep 100000", worktree: fleet.WorktreeRequest.fromPartial({ repo, base: "main" }) });
    expect(readFileSync(join(h.dir, ".skein-worktrees", "a6", "README"), "utf8")).toBe("hello\n");
    await stop("a6");
    await remove("a6");
    git(repo, "checkout", "--", "README");

    expect(existsSync(join(h.dir, ".skein-worktrees", "a1"))).toBe(false);
    expect(existsSync(join(h.dir, ".skein-worktrees", "a4"))).toBe(false);
    expect(worktreePaths()).toEqual([repo]);
    expect((await call(h.client, h.client.listAgents, {})).agents).toEqual([]);
    expect(h.sessions()).toEqual([]);
  });

  it("SKEIN_FLEET_WORKTREES_DIR puts worktrees under one root, as <root>/<name>; a path already there is refused", async () => {
    const root = join(h.dir, "trees");
    h.extraEnv.SKEIN_FLEET_WORKTREES_DIR = root;
    await h.restart();
    const a = (await h.startAgent({ name: "rooted", workdir: "", command: "sleep 100000", worktree: fleet.WorktreeRequest.fromPartial({ repo }) })).agent!;
    expect(a.workdir).toBe(join(root, "rooted"));
    expect(worktreePaths()).toContain(join(root, "rooted"));

    mkdirSync(join(root, "taken"));
    const e = await rejection(h.startAgent({ name: "taken", workdir: "", command: "sleep 1", worktree: fleet.WorktreeRequest.fromPartial({ repo }) }));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toContain(`${join(root, "taken")} already exists`);
    expect(branchExists("skein/taken")).toBe(false);
  });
});
