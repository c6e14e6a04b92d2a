import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ExtensionSet } from "../../src/extensions/extension-set.js";
import { PidRegistry, REGISTRY_DIR } from "../../src/extensions/pid-registry.js";
import { groupMembers, liveStartTicks } from "@skein/host";
import { alive, compileExtensions, everything, fixtureEntry } from "./helpers.js";
import { eventually } from "../support/harness.js";

let sessionsDir: string;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  sessionsDir = await mkdtemp(join(tmpdir(), "skein-ext-reg-"));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await rm(sessionsDir, { recursive: true, force: true });
});

async function records(file: string): Promise<Array<{ pid: number; startTime: number; extension: string }>> {
  return JSON.parse(await readFile(file, "utf8")).processes;
}

describe("PidRegistry", () => {
  it("records started extension processes on disk and forgets them when they end", async () => {
    const registry = await PidRegistry.open(sessionsDir);
    const set = new ExtensionSet({ registry, killGraceMs: 500 });
    cleanups.push(() => registry.close(), () => set.close());
    await set.add(everything());
    await set.add(everything({ name: "two" }));
    expect(registry.count).toBe(2);
    const recs = await records(registry.file);
    expect(recs.map((r) => r.extension).sort()).toEqual(["everything", "two"]);
    for (const r of recs) expect(liveStartTicks(r.pid)).toBe(r.startTime);

    await set.remove("two");
    expect(registry.count).toBe(1);
    expect((await records(registry.file)).map((r) => r.extension)).toEqual(["everything"]);

    await set.close();
    expect(registry.count).toBe(0);
    expect(await records(registry.file)).toEqual([]);
    await registry.close();
    expect(await readdir(join(sessionsDir, REGISTRY_DIR))).toEqual([]);
  });

  it("counts a crashed extension out and its restart in", async () => {
    const registry = await PidRegistry.open(sessionsDir);
    const set = new ExtensionSet({ registry, killGraceMs: 500 });
    cleanups.push(() => registry.close(), () => set.close());
    await set.add(everything());
    const [rec] = await records(registry.file);
    process.kill(rec!.pid, "SIGKILL");
    await eventually(() => registry.count === 0);
    await set.call("everything__echo", { message: "x" }, new AbortController().signal);
    expect(registry.count).toBe(1);
    expect((await records(registry.file))[0]!.pid).not.toBe(rec!.pid);
  });

  describe("reapOrphans", () => {
    let compiled: { dir: string; cleanup: () => Promise<void> };
    beforeAll(async () => {
      compiled = await compileExtensions();
    }, 120_000);
    afterAll(async () => {
      await compiled?.cleanup();
    });

    // A stand-in for a service instance: starts extensions (one under sh, so it has a
    // grandchild, and one that starts a grandchild of its own), prints the registry, then
    // waits to be killed. The fixture keeps running after stdin closes, as many servers do;
    // one that exits on EOF would not be an orphan.
    async function startPreviousInstance(): Promise<{ host: ChildProcess; pids: number[] }> {
      const script = join(compiled.dir, "host.mjs");
      const env = { FIXTURE_STAY: "1" };
      const direct = { name: "direct", cmd: process.execPath, args: [fixtureEntry], env, timeoutSeconds: 60 };
      const shelled = { name: "shelled", cmd: "/bin/sh", args: ["-c", `"${process.execPath}" "${fixtureEntry}"; exit $?`], env, timeoutSeconds: 60 };
      await writeFile(
        script,
        `import { readFileSync } from "node:fs";
import { ExtensionSet, PidRegistry } from "./extensions/index.js";
const registry = await PidRegistry.open(process.argv[2]);
const set = new ExtensionSet({ registry });
await set.add(${JSON.stringify(direct)});
await set.add(${JSON.stringify(shelled)});
await set.call("direct__spawn-grandchild", {}, new AbortController().signal);
console.log(JSON.stringify(readFileSync(registry.file, "utf8")));
setInterval(() => {}, 1000);
`,
      );
      const host = spawn(process.execPath, [script, sessionsDir], { stdio: ["ignore", "pipe", "inherit"] });
      cleanups.push(() => host.exitCode === null && host.signalCode === null && host.kill("SIGKILL"));
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: host.stdout! }).once("line", resolve);
        host.once("exit", (code) => reject(new Error(`host exited ${code}`)));
      });
      const leaders = (JSON.parse(JSON.parse(line)).processes as Array<{ pid: number }>).map((p) => p.pid);
      const pids = leaders.flatMap((pid) => groupMembers(pid));
      cleanups.push(() => pids.forEach((p) => alive(p) && process.kill(p, "SIGKILL")));
      return { host, pids };
    }

    it("ends the extension process groups (grandchildren too) of an instance that was SIGKILLed", async () => {
      const { host, pids } = await startPreviousInstance();
      expect(pids.length).toBe(4); // node + its grandchild, sh + node
      host.kill("SIGKILL");
      await new Promise((r) => host.once("exit", r));
      // kill -9 ran no cleanup: the extensions are orphans now.
      for (const pid of pids) expect(alive(pid)).toBe(true);

      const registry = await PidRegistry.open(sessionsDir, { killGraceMs: 500 });
      cleanups.push(() => registry.close());
      expect(await registry.reapOrphans()).toBe(2);
      for (const pid of pids) expect(alive(pid)).toBe(false);
      expect(await readdir(join(sessionsDir, REGISTRY_DIR))).toEqual([]);
      expect(await registry.reapOrphans()).toBe(0);
    });

    it("leaves alone a live instance's processes and a recorded pid now used by another process", async () => {
      const { host, pids } = await startPreviousInstance();
      const registry = await PidRegistry.open(sessionsDir, { killGraceMs: 500 });
      cleanups.push(() => registry.close());
      // Its owner still runs: not orphans.
      expect(await registry.reapOrphans()).toBe(0);
      for (const pid of pids) expect(alive(pid)).toBe(true);

      // A record of a dead instance whose pid now belongs to an unrelated process
      // (here: a fresh group leader with a different start time).
      const bystander = spawn("/bin/sleep", ["60"], { detached: true, stdio: "ignore" });
      cleanups.push(() => alive(bystander.pid!) && process.kill(bystander.pid!, "SIGKILL"));
      const stale = { owner: { pid: 999_999_999, startTime: 1 }, processes: [{ pid: bystander.pid, startTime: 1, extension: "old" }] };
      await writeFile(join(sessionsDir, REGISTRY_DIR, "999999999-1.json"), JSON.stringify(stale));
      expect(await registry.reapOrphans()).toBe(0);
      expect(alive(bystander.pid!)).toBe(true);
      expect(await readdir(join(sessionsDir, REGISTRY_DIR))).not.toContain("999999999-1.json");

      host.kill("SIGKILL");
      await new Promise((r) => host.once("exit", r));
      expect(await registry.reapOrphans()).toBe(2);
      for (const pid of pids) expect(alive(pid)).toBe(false);
    });
  });
});
