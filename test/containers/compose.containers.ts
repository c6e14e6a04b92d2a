import { randomBytes } from "node:crypto";
import { credentials, Metadata } from "@grpc/grpc-js";
import { fleet, health, session as pb } from "@skein/proto";
import { call, collect, md, openaiText, repoRoot, startOpenAIServer, type FakeModelServer } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ComposeProject, detectEngine, hostGateway, must, run, type Engine } from "./engine.js";

/**
 * `npm run test:containers`: the images built with the project's Dockerfile,
 * run by the project's compose files in a real engine, checked from the host
 * through the published ports. Removes every container, network and volume it
 * made; keeps the two images it built (they are what `docker compose build`
 * makes) and says so.
 */

const TOKEN = randomBytes(24).toString("hex");
const SESSION = "127.0.0.1:50051";
const FLEET = "127.0.0.1:50052";
const auth = () => md({ token: TOKEN });
const DEADLINE_MS = 30_000;
const opts = () => ({ deadline: Date.now() + DEADLINE_MS });

let engine: Engine;
let model: FakeModelServer;
const projects: ComposeProject[] = [];
const clients: { close(): void }[] = [];

function client<C extends { close(): void }>(Ctor: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => C, address: string): C {
  const c = new Ctor(address, credentials.createInsecure());
  clients.push(c);
  return c;
}

/** SERVING through the address, polled: a fresh channel each try (a proxy or replica that just came up). */
async function waitServing(address: string, timeoutMs = 180_000): Promise<number> {
  const started = Date.now();
  let last = "";
  while (Date.now() - started < timeoutMs) {
    const h = new health.HealthClient(address, credentials.createInsecure());
    try {
      const r = await call<health.HealthCheckRequest, health.HealthCheckResponse>(h, h.check, { service: "" }, new Metadata(), { deadline: Date.now() + 3_000 });
      if (r.status === health.HealthCheckResponse_ServingStatus.SERVING) return Date.now() - started;
      last = `status ${r.status}`;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      h.close();
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${address} not SERVING after ${timeoutMs} ms: ${last}`);
}

function project(file: string, suffix: string): ComposeProject {
  const p = new ComposeProject(engine, file, `skein-ctest-${suffix}-${process.pid}`, {
    SKEIN_AUTH_TOKEN: TOKEN,
    POSTGRES_PASSWORD: randomBytes(12).toString("hex"),
    SKEIN_PROVIDER: "openai",
    SKEIN_MODEL: "fake-model",
    OPENAI_BASE_URL: `http://host.docker.internal:${model.port}/v1`,
    OPENAI_API_KEY: "test-key",
    SKEIN_LOG_LEVEL: "info",
    ...(hostGateway(engine) ? { SKEIN_HOST_GATEWAY: hostGateway(engine)! } : {}),
  });
  projects.push(p);
  return p;
}

/** CreateSession, then one Reply answered by the stub provider on the host. */
async function createAndReply(address: string, text: string): Promise<string> {
  const s = client(pb.SessionServiceClient, address);
  const created = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(s, s.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: "/tmp" }), auth(), opts());
  const id = created.session!.id;
  model.enqueue({ events: openaiText(text) });
  const events = await collect(s.reply(pb.ReplyRequest.fromPartial({ sessionId: id, text: "hello from the host" }), auth(), opts()));
  expect(JSON.stringify(events)).toContain(text);
  return id;
}

beforeAll(async () => {
  engine = detectEngine();
  console.log(`[containers] engine: ${engine.describe}`);
  for (const port of [50051, 50052]) {
    const busy = run(["sh", "-c", `ss -ltn 'sport = :${port}' | tail -n +2`]).stdout.trim();
    if (busy) throw new Error(`port ${port} is taken on this host (the compose files publish 127.0.0.1:${port}): stop what listens there first`);
  }
  // Base images: pulled, or stand-ins built from Debian and npm when no registry answers.
  must(["deploy/offline/build-base-images.sh", engine.name], { timeoutMs: 20 * 60_000 });
  const cafile = run(["npm", "config", "get", "cafile"]).stdout.trim();
  const secret = cafile && cafile !== "null" && cafile !== "undefined" ? ["--secret", `id=npm_ca,src=${cafile}`] : [];
  const format = engine.name === "podman" ? ["--format", "docker"] : [];
  for (const target of ["session", "fleet"]) {
    const started = Date.now();
    must([engine.name, "build", "-q", ...format, ...secret, "--target", target, "-t", `skein-${target}:latest`, repoRoot], { timeoutMs: 20 * 60_000 });
    console.log(`[containers] built skein-${target}:latest in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  model = await startOpenAIServer({ host: "0.0.0.0" });
}, 45 * 60_000);

// A failed step shows what the containers said (CI keeps nothing else of them).
afterEach((ctx) => {
  if (ctx.task.result?.state !== "fail") return;
  for (const p of projects.filter((x) => !x.removed)) console.log(`[containers] logs of ${p.project}:\n${p.logs()}`);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of projects.filter((x) => !x.removed)) p.remove();
  await model?.close();
  if (engine) console.log(`[containers] removed the test's containers, networks and volumes; kept images skein-session:latest and skein-fleet:latest (${engine.name} rmi them to free the space)`);
}, 10 * 60_000);

describe("docker-compose.yml", () => {
  let single: ComposeProject;
  let sessionId = "";

  it("comes up: each service SERVING through its published port", async () => {
    single = project("docker-compose.yml", "single");
    const started = Date.now();
    single.compose(["up", "-d", "--no-build"]);
    await Promise.all([waitServing(SESSION), waitServing(FLEET)]);
    console.log(`[containers] docker-compose.yml: up to SERVING in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const svc of ["session", "fleet"]) expect(single.healthcheck(svc).status, `${svc} healthcheck`).toBe(0);
  });

  it("CreateSession and Reply against the stub provider on the host", async () => {
    sessionId = await createAndReply(SESSION, "Answer from the stub provider.");
    expect(model.requests.at(-1)!.model).toBe("fake-model");
  });

  it("runs a fleet agent in tmux inside the container; exec … skein fleet ls lists it", async () => {
    const f = client(fleet.FleetServiceClient, FLEET);
    const started = await call<fleet.StartAgentRequest, fleet.StartAgentResponse>(f, f.startAgent, fleet.StartAgentRequest.fromPartial({ name: "ctest", workdir: "/workspace", command: "sleep 600", runtime: "shell" }), auth(), opts());
    expect(started.agent!.state).toBe(fleet.AgentState.AGENT_STATE_RUNNING);
    const tmux = single.exec("fleet", ["tmux", "-L", started.agent!.tmuxSocket, "list-sessions", "-F", "#{session_name}"]);
    expect(tmux.stdout.split("\n"), tmux.stderr).toContain("ctest");
    const ls = single.exec("fleet", ["skein", "fleet", "ls"]);
    expect(ls.status, ls.stderr).toBe(0);
    expect(ls.stdout).toContain("ctest");
    const touch = single.exec("fleet", ["sh", "-c", "touch /workspace/written-by-uid-$(id -u)"]);
    expect(touch.status, `the workspace is writable by the agents' user: ${touch.stderr}`).toBe(0);
  });

  it("keeps sessions and agents across down and up", async () => {
    single.compose(["down", "-t", "20"]);
    single.compose(["up", "-d", "--no-build"]);
    await Promise.all([waitServing(SESSION), waitServing(FLEET)]);
    const s = client(pb.SessionServiceClient, SESSION);
    const got = await call<pb.GetSessionRequest, pb.GetSessionResponse>(s, s.getSession, pb.GetSessionRequest.fromPartial({ sessionId, includeMessages: true }), auth(), opts());
    expect(JSON.stringify(got)).toContain("Answer from the stub provider.");
    const f = client(fleet.FleetServiceClient, FLEET);
    const agents = await call<fleet.ListAgentsRequest, fleet.ListAgentsResponse>(f, f.listAgents, {}, auth(), opts());
    expect(agents.agents.map((a) => a.name)).toContain("ctest");
    expect(single.exec("fleet", ["ls", "/workspace"]).stdout).toContain("written-by-uid-1000");
    single.remove();
  });
});

describe("docker-compose.replicas.yml", () => {
  let replicas: ComposeProject;

  /** Which replica answered, for `n` calls on fresh channels through the proxy (nginx balances per call). */
  async function answeringReplicas(n: number): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = new pb.SessionServiceClient(SESSION, credentials.createInsecure());
      try {
        const stats = await call<pb.GetStatsRequest, pb.GetStatsResponse>(s, s.getStats, {}, auth(), opts());
        seen.push(stats.replica!.id);
      } finally {
        s.close();
      }
    }
    return seen;
  }

  it("comes up behind the proxy: SERVING through it, its healthcheck a real gRPC health call", async () => {
    replicas = project("docker-compose.replicas.yml", "replicas");
    const started = Date.now();
    replicas.compose(["up", "-d", "--no-build"]);
    await waitServing(SESSION);
    console.log(`[containers] docker-compose.replicas.yml: up to SERVING through the proxy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(replicas.healthcheck("session-proxy").status, "proxy healthcheck").toBe(0);
  });

  it("balances calls over both replicas; CreateSession and Reply work through it", async () => {
    expect(replicas.containers("session")).toHaveLength(2);
    expect(new Set(await answeringReplicas(30)).size).toBe(2);
    await createAndReply(SESSION, "Answer through the proxy.");
  });

  it("keeps answering while one replica is down, and reaches it again once it is back", async () => {
    const [first] = replicas.containers("session");
    const before = new Set(await answeringReplicas(20));
    must([engine.name, "stop", "-t", "20", first!]);
    // Every call answered, by the other replica only (its address drops out of DNS; until then nginx moves the call on).
    const during = new Set(await answeringReplicas(20));
    expect(during.size).toBe(1);
    must([engine.name, "start", first!]);
    // Found by DNS again within the resolver's 5 s (whatever address the engine gave it).
    const until = Date.now() + 120_000;
    let after = new Set<string>();
    while (Date.now() < until && after.size < 2) after = new Set(await answeringReplicas(10));
    expect(after.size).toBe(2);
    expect([...before].filter((id) => !during.has(id))).toHaveLength(1);
    await createAndReply(SESSION, "Answer after the restart.");
    replicas.remove();
  });
});
