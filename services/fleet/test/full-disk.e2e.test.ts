import { readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { call, mountTmpfs, rejection, tmpfsUnavailable, type Tmpfs } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";
import { FleetHarness, waitFor } from "./harness.js";

/**
 * Issue 20 for the fleet: its state file and heartbeat directory on a full
 * tmpfs (real ENOSPC). StartAgent answers RESOURCE_EXHAUSTED and leaves no
 * agent running that the state file does not know; the state file is never
 * half-written; failing heartbeats are logged once (then at most a summary a
 * minute) and once more when they recover; nothing is lost when space returns.
 * Needs root for the mount.
 */
const noTmpfs = tmpfsUnavailable();
if (noTmpfs) console.warn(`fleet full-disk test skipped: ${noTmpfs}`);

let h: FleetHarness | undefined;
let fs: Tmpfs | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
  fs?.unmount();
  fs = undefined;
});

interface StateFile {
  agents: { spec: { name: string }; state: string }[];
}
const recordsIn = (path: string) => (JSON.parse(readFileSync(path, "utf8")) as StateFile).agents;
const agentsIn = (path: string) => recordsIn(path).map((a) => a.spec.name).sort();
const stateOf = (path: string, name: string) => recordsIn(path).find((a) => a.spec.name === name)?.state;
/** The heartbeat file's `ts=` as epoch seconds. */
const beatAt = (file: string) => Date.parse(/^ts=(\S+)$/m.exec(readFileSync(file, "utf8"))![1]!) / 1000;

it.skipIf(noTmpfs !== undefined)("state and heartbeats on a full disk: StartAgent RESOURCE_EXHAUSTED, whole state file, bounded warnings, all recorded once space returns", async () => {
  fs = mountTmpfs(1024 * 1024);
  h = new FleetHarness();
  Object.assign(h.extraEnv, { SKEIN_FLEET_STATE_DIR: join(fs.dir, "state"), SKEIN_HEARTBEAT_DIR: join(fs.dir, "hb") });
  await h.start();
  const svc = h.svc!;
  const names = ["a1", "a2", "a3", "a4", "a5"];
  for (const name of names) await h.startAgent({ name, command: "sleep 300", heartbeatIntervalSeconds: 1 });
  const statePath = join(fs.dir, "state", `fleet-${h.socket}.json`);
  expect(agentsIn(statePath)).toEqual(names);

  fs.fill();
  const err = await rejection(h.startAgent({ name: "late", command: "sleep 300" }));
  expect(err.code, err.details).toBe(status.RESOURCE_EXHAUSTED);
  expect(err.details).toContain(`no space left for the fleet state at ${join(fs.dir, "state")}`);
  // Not left running unknown to the state file, and the file is whole, as before.
  expect(h.sessions()).toEqual(names);
  expect(agentsIn(statePath)).toEqual(names);

  // Five agents beating every second, the timer retrying every tick: one warning, not one per try.
  const beatWarnings = () => svc.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("heartbeat writes failing"));
  await waitFor("the first failed heartbeat", () => beatWarnings().length > 0);
  await new Promise((r) => setTimeout(r, 3_000));
  expect(beatWarnings()).toHaveLength(1);
  expect(beatWarnings()[0]).toMatchObject({ level: 40, reason: expect.stringContaining("ENOSPC") });
  // The service keeps answering meanwhile.
  expect((await call(h.client, h.client.listAgents, {})).agents.map((a) => a.name).sort()).toEqual(names);

  // A change while the disk is full: the stop happens, its record waits for space (retried by a timer).
  await h.stopAgent("a5", 0);
  expect(stateOf(statePath, "a5")).toBe("running");

  const freedAt = Math.floor(Date.now() / 1000);
  fs.free();
  await waitFor("the heartbeat recovery line", () => svc.logs.some((l) => typeof l.msg === "string" && l.msg.startsWith("heartbeat writes: working again after")));
  await waitFor("the stop recorded", () => stateOf(statePath, "a5") === "stopped");
  // Its last beat, lost to the full disk at the stop, is written too: no status=ok left behind.
  await waitFor("a5's final beat", () => /^status=stopped$/m.test(readFileSync(join(fs!.dir, "hb", "a5.hb"), "utf8")));
  for (const name of names.slice(0, 4)) await waitFor(`${name}'s beat`, () => beatAt(join(fs!.dir, "hb", `${name}.hb`)) >= freedAt);
  await h.startAgent({ name: "late", command: "sleep 300" });
  expect(agentsIn(statePath)).toEqual([...names, "late"].sort());
  expect(svc.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("state file writes failing"))).toHaveLength(1);
});
