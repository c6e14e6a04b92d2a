import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { signalGroup } from "@skein/host";
import { afterEach, describe, expect, it } from "vitest";
import { descendantsOf, processesEnd, processesMarked, processesUnder, testMarker } from "../src/index.js";

/** Process groups this file started: ended after each test, also when it fails. */
const groups: number[] = [];
afterEach(async () => {
  for (const g of groups.splice(0)) signalGroup(g, "SIGKILL");
});

/** `sh -c script` in a group of its own, with `args` as $0, $1, …; resolves with the shell's pid. */
async function shell(script: string, ...args: string[]): Promise<number> {
  const child = spawn("sh", ["-c", script, ...args], { detached: true, stdio: "ignore" });
  await new Promise((r) => child.once("spawn", r));
  groups.push(child.pid!);
  return child.pid!;
}

const childrenOf = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);

async function until<T>(probe: () => T, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    const v = probe();
    if (ok(v) || i > 200) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("processes of this test only", () => {
  it("descendantsOf follows the parent chain below a pid: children and grandchildren, not the pid itself nor its siblings", async () => {
    const outer = await shell("sleep 300 & sh -c 'sleep 301 & wait' & wait");
    const sibling = await shell("sleep 302 & wait");
    const below = await until(() => descendantsOf(outer), (d) => d.length === 3);
    // sleep 300, the inner sh and its sleep 301, and nothing of the sibling's tree.
    expect(below).toHaveLength(3);
    expect(below).not.toContain(outer);
    for (const pid of childrenOf(sibling)) expect(below).not.toContain(pid);
    expect(descendantsOf(process.pid)).toEqual(expect.arrayContaining([outer, sibling, ...below]));
    // An argument that is the value (not one that merely mentions it, as the inner sh's script does).
    const sleeping = processesUnder(outer, "301").map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8"));
    expect(sleeping).toEqual(["sleep\u0000301\u0000"]);
    expect(processesUnder(outer, "30")).toEqual([]);
  });

  it("processesMarked finds a marked process that left the tree (an orphan), and marker 1 never matches marker 12's", async () => {
    const markers = Array.from({ length: 12 }, () => testMarker("orphan"));
    const [first, twelfth] = [markers[0]!, markers[11]!];
    expect(twelfth.startsWith(first)).toBe(true);
    // The shell starts a marked node in the background and exits: its parent becomes init (or a subreaper), not us.
    const sh = await shell('"$1" -e "setInterval(() => {}, 1000)" -- "$2" & exit 0', "sh", process.execPath, `--skein-test=${twelfth}`);
    // The shell carries the marker among its own arguments too, and shell() resolves at spawn: look once it is gone.
    expect(await until(() => existsSync(`/proc/${sh}`), (alive) => !alive)).toBe(false);
    const found = await until(() => processesMarked(twelfth), (p) => p.length === 1);
    expect(found).toHaveLength(1);
    expect(descendantsOf(process.pid)).not.toContain(found[0]);
    expect(processesMarked(first)).toEqual([]);
    // It is still in the shell's process group, which afterEach ends.
    process.kill(found[0]!, "SIGKILL");
    expect(await processesEnd(found)).toBe(true);
    // Its /proc entry goes once its new parent (init, or a subreaper) has reaped it.
    expect(await until(() => processesMarked(twelfth), (p) => p.length === 0)).toEqual([]);
  });

  it("testMarker names this worker, so two test files running at once never share one", () => {
    expect(testMarker("x")).toMatch(new RegExp(`^x-${process.pid}-\\d+$`));
  });
});
