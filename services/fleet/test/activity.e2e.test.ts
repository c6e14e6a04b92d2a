import { createServer, type Server } from "node:http";
import { type AddressInfo } from "node:net";
import { fleet } from "@skein/proto";
import { call } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { signBody, SIGNATURE_HEADER } from "../src/webhook.js";
import { FleetHarness, readHeartbeat, waitFor } from "./harness.js";

const A = fleet.Activity;
const E = fleet.AgentEventType;

let h: FleetHarness;
let receiver: Server | undefined;
afterEach(async () => {
  await h?.cleanup();
  receiver?.closeAllConnections();
  await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  receiver = undefined;
});

/**
 * A fake agent: prints, spins, stops at a prompt and waits on `read`; once
 * answered it prints some more, then sits silent on a bare `read` (no prompt
 * anyone recognises) and exits 3 when that read gets a line.
 */
const FAKE_AGENT = `sh -c '
i=0; while [ $i -lt 12 ]; do echo "thinking $i"; i=$((i+1)); sleep 0.25; done
printf "Do you want to proceed? (y/n) "; read ans; echo "answer: $ans"
i=0; while [ $i -lt 12 ]; do echo "editing $i"; i=$((i+1)); sleep 0.25; done
read last; exit 3'`;

interface Hook {
  body: Record<string, unknown>;
  signature: string | undefined;
  raw: string;
}

async function webhookReceiver(): Promise<{ url: string; hooks: Hook[] }> {
  const hooks: Hook[] = [];
  receiver = createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      hooks.push({ body: JSON.parse(raw) as Record<string, unknown>, signature: req.headers[SIGNATURE_HEADER] as string | undefined, raw });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver!.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, hooks };
}

describe("activity", () => {
  it("working → waiting at the prompt → working once answered → idle; events, heartbeat and webhooks follow", async () => {
    const hook = await webhookReceiver();
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
    await waitFor("exit webhook", () => hook.hooks.some((x) => x.body.state === "exited"));

    const activities = events.filter((e) => e.type === E.AGENT_EVENT_TYPE_ACTIVITY).map((e) => e.agent!.activity);
    // The last "working": the answer to the bare read (an answer always means working until seen otherwise).
    expect(activities).toEqual([A.ACTIVITY_WORKING, A.ACTIVITY_WAITING, A.ACTIVITY_WORKING, A.ACTIVITY_IDLE, A.ACTIVITY_WORKING]);
    stream.cancel();

    // Each transition a person cares about, once, signed.
    expect(hook.hooks.map((x) => [x.body.activity, x.body.state])).toEqual([
      ["waiting", "running"],
      ["idle", "running"],
      ["unknown", "exited"],
    ]);
    for (const x of hook.hooks) expect(x.signature).toBe(signBody(x.raw, "s3cret"));
    expect(hook.hooks[0]!.body).toMatchObject({ agent: "asks", exit_status: null });
    expect(hook.hooks[0]!.body.waiting_for).toContain("Do you want to proceed?");
    expect(typeof hook.hooks[0]!.body.host).toBe("string");
    expect(hook.hooks[2]!.body.exit_status).toBe(3);
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
});
