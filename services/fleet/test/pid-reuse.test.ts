import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyedLock, readProcStatSync } from "@skein/host";
import { createLogger } from "@skein/runtime";
import { afterEach, expect, it } from "vitest";
import { newAgent, type Agent, type FleetEvent } from "../src/agent.js";
import { AgentRegistry } from "../src/agent-registry.js";
import { Supervisor } from "../src/supervisor.js";
import type { Tmux } from "../src/tmux.js";
import { waitFor } from "./harness.js";

const dir = mkdtempSync(join(tmpdir(), "skein-pid-reuse-"));
let supervisor: Supervisor | undefined;
afterEach(() => {
  supervisor?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// The pane is alive and tmux still names the launched pid, but the process
// holding that pid started at another time: the kernel reused the pid. The
// agent must not be reported running, and its heartbeat must stop saying ok.
it("does not take a reused pid for the agent: state unknown, heartbeat status=unknown, an event", async () => {
  const pid = process.pid;
  const realStart = readProcStatSync(pid)!.startTicks;
  const agent: Agent = newAgent(
    {
      name: "reused",
      workdir: dir,
      command: "sleep 300",
      runtime: "test",
      runtimeBinDirs: [],
      env: {},
      heartbeatIntervalSeconds: 1,
      heartbeatFile: join(dir, "reused.hb"),
      restartPolicy: "never",
      maxRestarts: 10,
    },
    { paneId: "%1", panePid: pid },
  );
  agent.pidStartTicks = realStart - 1;
  const tmux = {
    socket: "fake",
    pane: async () => ({ session: "reused", paneId: "%1", panePid: pid, dead: false, currentPath: dir, startCommand: "sleep 300" }),
    nudgeReaper: async () => undefined,
  } as unknown as Tmux;
  const log = createLogger("test", { destination: { write: () => true } as unknown as NodeJS.WritableStream, pretty: false });
  const registry = new AgentRegistry("fake", { save: async () => undefined }, log);
  registry.set(agent);
  const events = registry.events;
  const seen: FleetEvent[] = [];
  const ac = new AbortController();
  void (async () => {
    for await (const e of events.subscribe([ac.signal])) seen.push(e);
  })();
  supervisor = new Supervisor({
    tmux,
    log,
    lock: new KeyedLock(),
    registry,
    launcher: { launch: async () => ({ paneId: "%1", panePid: pid, pidStartTicks: realStart }) },
    kept: { keep: async () => undefined },
    tickMs: 10,
  });
  supervisor.start();
  await waitFor("the agent to be unknown", () => agent.state === "unknown");
  await waitFor("an unknown heartbeat", () => {
    try {
      return readFileSync(agent.spec.heartbeatFile, "utf8").includes("status=unknown");
    } catch {
      return false;
    }
  });
  expect(readFileSync(agent.spec.heartbeatFile, "utf8")).toMatch(/^ts=\S+Z\npid=\d+\nstatus=unknown\n/);
  await waitFor("the event", () => seen.some((e) => e.type === "heartbeat-stale"));
  ac.abort();
});
