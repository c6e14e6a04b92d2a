import { spawn } from "node:child_process";
import { fleet } from "@skein/proto";
import { call } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { signBody, SIGNATURE_HEADER } from "../src/webhook.js";
import { FleetHarness, pidAlive, readHeartbeat, TMUX, waitFor, webhookReceiver } from "./harness.js";

const A = fleet.Activity;
const E = fleet.AgentEventType;

let h: FleetHarness;
let receiver: Awaited<ReturnType<typeof webhookReceiver>> | undefined;
afterEach(async () => {
  await h?.cleanup();
  await receiver?.close();
  receiver = undefined;
});

/**
 * A fake agent: prints, spins, stops at a prompt and waits on `read`; once
 * answered it prints some more, then sits silent on a bare `read` (no prompt
 * anyone recognises) and exits 3 when that read gets a line.
 */
const FAKE_AGENT = `sh -c '
i=0; while [ $i -lt 20 ]; do echo "thinking $i"; i=$((i+1)); sleep 0.25; done
printf "Do you want to proceed? (y/n) "; read ans; echo "answer: $ans"
i=0; while [ $i -lt 12 ]; do echo "editing $i"; i=$((i+1)); sleep 0.25; done
read last; exit 3'`;

describe("activity", () => {
  it("working → waiting at the prompt → working once answered → idle; events, heartbeat and webhooks follow", async () => {
    const hook = (receiver = await webhookReceiver());
    const bodies = () => hook.posts.map((p) => JSON.parse(p.raw) as Record<string, unknown>);
    h = new FleetHarness();
    Object.assign(h.extraEnv, { SKEIN_FLEET_IDLE_AFTER_S: "2", SKEIN_FLEET_WEBHOOK_URL: hook.url, SKEIN_FLEET_WEBHOOK_SECRET: "s3cret" });
    await h.start();
    const events: fleet.WatchAgentsResponse[] = [];
    const stream = h.client.watchAgents({ names: ["asks"] });
    stream.on("data", (e: fleet.WatchAgentsResponse) => events.push(e));
    stream.on("error", () => undefined);
    // The watch is subscribed once the service has answered a call made after it (same connection, in order).
    await waitFor("watch subscribed", async () => (await call(h.client, h.client.listAgents, {})) && true);
    const started = (await h.startAgent({ name: "asks", command: FAKE_AGENT, runtime: "fake" })).agent!;

    await waitFor("working", async () => (await h.getAgent("asks")).activity === A.ACTIVITY_WORKING);
    const waiting = await waitFor("waiting", async () => {
      const a = await h.getAgent("asks");
      return a.activity === A.ACTIVITY_WAITING && a;
    });
    expect(waiting.waitingFor).toContain("Do you want to proceed? (y/n)");
    expect(readHeartbeat(started.heartbeatFile).activity).toBe("waiting");

    await call(h.client, h.client.sendInput, { name: "asks", text: "y", pressEnter: true });
    expect((await h.getAgent("asks")).activity).toBe(A.ACTIVITY_WORKING);
    await waitFor("idle", async () => (await h.getAgent("asks")).activity === A.ACTIVITY_IDLE, 20_000);
    expect(readHeartbeat(started.heartbeatFile).activity).toBe("idle");

    await call(h.client, h.client.sendInput, { name: "asks", text: "q", pressEnter: true });
    await waitFor("exit webhook", () => bodies().some((b) => b.state === "exited"));

    const activities = events.filter((e) => e.type === E.AGENT_EVENT_TYPE_ACTIVITY).map((e) => e.agent!.activity);
    // The last "working": the answer to the bare read (an answer always means working until seen otherwise).
    expect(activities).toEqual([A.ACTIVITY_WORKING, A.ACTIVITY_WAITING, A.ACTIVITY_WORKING, A.ACTIVITY_IDLE, A.ACTIVITY_WORKING]);
    stream.cancel();

    // Each transition a person cares about, once, signed.
    const sent = bodies();
    expect(sent.map((b) => [b.activity, b.state])).toEqual([
      ["waiting", "running"],
      ["idle", "running"],
      ["unknown", "exited"],
    ]);
    for (const p of hook.posts) expect(p.headers[SIGNATURE_HEADER]).toBe(signBody(p.raw, "s3cret"));
    expect(sent[0]).toMatchObject({ agent: "asks", exit_status: null });
    expect(sent[0]!.waiting_for).toContain("Do you want to proceed?");
    expect(typeof sent[0]!.host).toBe("string");
    expect(sent[2]!.exit_status).toBe(3);
  });

  it("skein-fleet-signal from inside the pane is taken; with another secret it is refused", async () => {
    h = await new FleetHarness().start();
    const script = `sh -c 'SKEIN_FLEET_SIGNAL_SECRET=wrong skein-fleet-signal idle; echo "wrong=$?"; skein-fleet-signal waiting --message "needs an API key"; echo "right=$?"; exec sleep 100000'`;
    await h.startAgent({ name: "says", command: script });
    const a = await waitFor("signalled waiting", async () => {
      const g = await h.getAgent("says");
      return g.activity === A.ACTIVITY_WAITING && g;
    });
    expect(a.waitingFor).toBe("needs an API key");
    // The fleet's look at its panes goes through one control-mode client (no tmux fork a second), read-only and without a say in sizes.
    const clients = await waitFor("the control client", () => {
      const out = h.tmux("list-clients", "-F", "#{client_control_mode} #{client_readonly} #{client_flags}").trim();
      return out !== "" && out;
    });
    expect(clients).toMatch(/^1 1 .*ignore-size/);
    expect(clients).toMatch(/no-output/);
    const screen = await waitFor("both results on screen", async () => {
      const t = (await call(h.client, h.client.captureOutput, { name: "says", lines: 50 })).text;
      return t.includes("right=") && t;
    });
    expect(screen).toContain("wrong=1");
    expect(screen).toContain("refused: wrong SKEIN_FLEET_SIGNAL_SECRET for agent says");
    expect(screen).toContain("right=0");
  });

  it("an agent adopted by a restarted service still signals with its secret", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "lasts", command: `sh -c 'read x; skein-fleet-signal waiting --message "after the restart"; echo "rc=$?"; exec sleep 100000'` });
    await h.restart();
    await call(h.client, h.client.sendInput, { name: "lasts", text: "go", pressEnter: true });
    const a = await waitFor("signalled waiting", async () => {
      const g = await h.getAgent("lasts");
      return g.activity === A.ACTIVITY_WAITING && g;
    });
    expect(a.waitingFor).toBe("after the restart");
  });

  it("the control client ends with a killed service; a restarted one ends those left behind, never a person's", async () => {
    h = await new FleetHarness().start();
    await h.startAgent({ name: "watched", command: "sleep 100000" });
    const controlPid = async () => {
      const line = h.tmux("list-clients", "-F", "#{client_pid} #{client_readonly}").split("\n").find((l) => l.endsWith(" 1"));
      return line === undefined ? undefined : Number(line.split(" ")[0]);
    };
    const first = await waitFor("the control client", controlPid);
    await h.svc!.stop("SIGKILL");
    await waitFor("the control client to end with the service", () => !pidAlive(first));

    // Left behind (as by a service without setpriv), beside a person's own control client.
    const attach = (...flags: string[]) => spawn(TMUX, ["-L", h.socket, "-C", "attach-session", ...flags, "-t", "=watched"], { stdio: ["pipe", "ignore", "ignore"] });
    const leftover = attach("-r", "-f", "no-output,ignore-size");
    const person = attach();
    try {
      await waitFor("both attached", () => h.tmux("list-clients").trim().split("\n").length === 2);
      await h.start();
      await waitFor("the leftover ended", () => leftover.exitCode !== null || leftover.signalCode !== null);
      expect(person.exitCode).toBeNull();
      expect(h.svc!.logs.some((l) => l.msg === "ended tmux control clients a previous fleet service left behind")).toBe(true);
    } finally {
      leftover.kill();
      person.kill();
    }
  });
});
