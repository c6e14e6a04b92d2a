import { execFileSync } from "node:child_process";
import { fleet } from "@skein/proto";
import { procEnviron, tmuxGlobalEnv } from "@skein/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FleetHarness, TMUX, waitFor } from "./harness.js";

let h: FleetHarness;
afterEach(async () => {
  await h?.cleanup();
});

/** What the service is started with that no agent may see. */
const SECRETS = { SKEIN_AUTH_TOKEN: "tok-must-not-leak", OPENAI_API_KEY: "sk-must-not-leak", ANTHROPIC_API_KEY: "an-must-not-leak", SERVICE_ONLY: "x" };

function expectNoSecrets(env: Record<string, string>, where: string): void {
  for (const k of Object.keys(SECRETS)) expect(env[k], `${k} in ${where}`).toBeUndefined();
  for (const v of Object.values(env)) expect(v, where).not.toMatch(/must-not-leak/);
}

/** The environment of the agent's process (its pane pid: the launch line execs the command). */
async function agentEnv(name: string): Promise<Record<string, string>> {
  const a = await h.getAgent(name);
  return waitFor(`${name}'s environment`, () => {
    const env = procEnviron(a.panePid);
    // Until the launch line has exec'd, /proc shows the shell tmux started.
    return readCmd(a.panePid) === "sleep" && env;
  });
}

const readCmd = (pid: number) => execFileSync("ps", ["-o", "comm=", "-p", String(pid)], { encoding: "utf8" }).trim();

describe("agent environment", () => {
  it("holds the allow-list and the request's env, never the service's secrets, in panes and in tmux's global environment", async () => {
    h = new FleetHarness();
    Object.assign(h.extraEnv, SECRETS, { TZ: "Europe/Berlin", LC_TIME: "C", LANG: "C.UTF-8" });
    await h.start();
    await h.startAgent({ name: "clean", command: "sleep 300", env: { FROM_REQUEST: "yes" } });
    const env = await agentEnv("clean");
    expectNoSecrets(env, "the pane");
    expect(env).toMatchObject({ FROM_REQUEST: "yes", TZ: "Europe/Berlin", LC_TIME: "C", LANG: "C.UTF-8" });
    expect(env.HOME).toBeTruthy();
    expect(env.PATH).toBeTruthy();
    expectNoSecrets(tmuxGlobalEnv(h.socket), "tmux show-environment -g");
  });

  it("passes exactly the names SKEIN_AGENT_ENV_PASSTHROUGH lists (NAME or PREFIX*)", async () => {
    h = new FleetHarness();
    Object.assign(h.extraEnv, SECRETS, { SKEIN_AGENT_ENV_PASSTHROUGH: "PATH,HOME,KEEP_ME,MY_*", KEEP_ME: "1", MY_A: "2", MY_B: "3", TZ: "UTC" });
    await h.start();
    await h.startAgent({ name: "listed", command: "sleep 300" });
    const env = await agentEnv("listed");
    expectNoSecrets(env, "the pane");
    expect(env).toMatchObject({ KEEP_ME: "1", MY_A: "2", MY_B: "3" });
    expect(env.TZ).toBeUndefined();
  });

  it("cleans a tmux server an older service left with its environment, for new and adopted agents", async () => {
    h = new FleetHarness();
    Object.assign(h.extraEnv, SECRETS);
    // The server as a fleet service without the allow-list left it: started with everything it had.
    // Its client's SSH agent socket went into the session's environment (tmux's update-environment).
    const sshAuthSock = "/tmp/ssh-agent.sock-must-not-leak";
    execFileSync(TMUX, ["-L", h.socket, "new-session", "-d", "-s", "old", "-c", h.work, "sleep 300"], { env: { ...process.env, ...SECRETS, SSH_AUTH_SOCK: sshAuthSock } });
    expect(tmuxGlobalEnv(h.socket).OPENAI_API_KEY).toBe(SECRETS.OPENAI_API_KEY);
    expect(h.tmux("show-environment", "-t", "=old")).toContain(sshAuthSock);
    await h.start();
    expect((await h.getAgent("old")).state).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
    expectNoSecrets(tmuxGlobalEnv(h.socket), "tmux show-environment -g after adoption");
    expect(h.tmux("show-environment", "-t", "=old")).not.toContain(sshAuthSock);
    await h.startAgent({ name: "new", command: "sleep 300" });
    expectNoSecrets(await agentEnv("new"), "a new agent's pane");
    // The adopted agent's next run (here: started again after it exited) is clean too.
    process.kill((await h.getAgent("old")).panePid, "SIGKILL");
    await waitFor("old exited", async () => (await h.getAgent("old")).state === fleet.AgentState.AGENT_STATE_EXITED);
    await h.startAgent({ name: "old", command: "sleep 300", env: { AGAIN: "1" } });
    const env = await agentEnv("old");
    expectNoSecrets(env, "the adopted agent's new run");
    expect(env.AGAIN).toBe("1");
  });

  it("a restart beside the server a fleet service started removes nothing and warns of nothing (tmux's own PWD included)", async () => {
    h = new FleetHarness();
    await h.start();
    await h.startAgent({ name: "kept", command: "sleep 300" });
    expect(Object.keys(tmuxGlobalEnv(h.socket))).toContain("PWD");
    await h.restart();
    expect((await h.getAgent("kept")).state).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
    expect(h.svc!.logs.filter((l) => /removed variables/.test(l.msg ?? ""))).toEqual([]);
  });
});
