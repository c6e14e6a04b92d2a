import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, startService } from "@skein/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { envOf, execForm, lineage, parseDockerfile } from "./dockerfile.js";

interface ComposeService {
  extra_hosts?: string[];
  build: { context: string; target: string };
  environment: Record<string, string>;
  volumes: string[];
  ports: string[];
  healthcheck: { test: string[] };
  restart: string;
  stop_signal?: string;
}
const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const stages = parseDockerfile(join(repoRoot, "Dockerfile"));
// The user's documentation of containers and settings: the README, docs/containers.md and docs/configuration.md.
const readme = ["README.md", "docs/containers.md", "docs/configuration.md"].map((p) => readFileSync(join(repoRoot, p), "utf8")).join("\n");
const ADDR = { session: "SKEIN_SESSION_ADDR", fleet: "SKEIN_FLEET_ADDR" } as const;
const inRepo = (p: string) => join(repoRoot, p.replace(/^\/app\//, ""));

describe("Dockerfile", () => {
  it("builds from a current Node LTS slim image", () => {
    for (const s of stages.filter((x) => x.from.startsWith("node:"))) expect(s.from).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim$/);
    expect(readFileSync(join(repoRoot, "Dockerfile"), "utf8")).toMatch(/ARG NODE_VERSION=(22|24)\b/);
  });

  it("copies only paths that exist in the repository or the build stage", () => {
    for (const s of stages) {
      for (const i of s.instructions.filter((x) => x.op === "COPY")) {
        const parts = i.args.split(/\s+/);
        const fromStage = parts.find((p) => p.startsWith("--from="));
        const sources = parts.filter((p) => !p.startsWith("--")).slice(0, -1);
        for (const src of sources) {
          // Build-stage outputs are produced by the same build `npm test` ran.
          const path = fromStage ? inRepo(src) : join(repoRoot, src);
          expect(existsSync(path), `${s.name}: COPY ${src}`).toBe(true);
        }
      }
    }
  });

  it.each(["session", "fleet"] as const)("%s target: non-root, an init, SIGTERM, healthcheck, production deps, a start command that exists", (target) => {
    const line = lineage(stages, target);
    expect(line.length).toBeGreaterThan(1);
    const all = line.flatMap((s) => s.instructions);
    const users = all.filter((i) => i.op === "USER");
    // Numeric: Kubernetes' runAsNonRoot can check a uid, not a user name.
    expect(users.at(-1)?.args).toBe("1000:1000");
    expect(execForm(line, "ENTRYPOINT")).toEqual(["/usr/bin/tini", "--"]);
    expect(all.some((i) => i.op === "RUN" && /apt-get install .*\btini\b/.test(i.args))).toBe(true);
    expect(all.some((i) => i.op === "STOPSIGNAL" && i.args === "SIGTERM")).toBe(true);
    expect(all.some((i) => i.op === "VOLUME"), "no VOLUME: anonymous volumes nobody uses").toBe(false);
    // node_modules comes from a stage that installs production dependencies only, without install scripts.
    const modules = all.find((i) => i.op === "COPY" && / \/app\/node_modules node_modules$/.test(i.args))!;
    const from = stages.find((s) => s.name === /--from=(\S+)/.exec(modules.args)![1])!;
    expect(from.instructions.some((i) => i.op === "RUN" && /npm(-with-secrets)? ci --omit=dev --ignore-scripts/.test(i.args))).toBe(true);
    const cmd = execForm(line, "CMD");
    expect(existsSync(join(repoRoot, cmd[1]!)), cmd.join(" ")).toBe(true);
    const health = execForm(line, "HEALTHCHECK");
    expect(health.slice(0, 2)).toEqual(["node", "/app/packages/cli/bin/skein.js"]);
    expect(existsSync(inRepo(health[1]!))).toBe(true);
    if (target === "fleet") expect(all.some((i) => i.op === "RUN" && /apt-get install .*\btmux\b/.test(i.args))).toBe(true);
  });
});

describe("docker-compose.yml", () => {
  it("runs both services from Dockerfile targets, restarted unless stopped", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["fleet", "session"]);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.build.target).toBe(name);
      expect(stages.some((s) => s.name === svc.build.target)).toBe(true);
      expect(svc.restart).toBe("unless-stopped");
      expect(svc.stop_signal).toBe("SIGTERM");
    }
  });

  it("listens on 0.0.0.0 only with a required token from .env", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.environment[ADDR[name as keyof typeof ADDR]]).toMatch(/^0\.0\.0\.0:\d+$/);
      expect(svc.environment.SKEIN_AUTH_TOKEN).toMatch(/^\$\{SKEIN_AUTH_TOKEN:\?.+\}$/);
    }
    expect(readFileSync(join(repoRoot, ".env.example"), "utf8")).toMatch(/^SKEIN_AUTH_TOKEN=/m);
    expect(readFileSync(join(repoRoot, ".gitignore"), "utf8")).toMatch(/^\.env$/m);
  });

  it("publishes each service's own port, on the host's loopback", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      const port = svc.environment[ADDR[name as keyof typeof ADDR]]!.split(":")[1];
      expect(svc.ports).toEqual([`127.0.0.1:${port}:${port}`]);
    }
  });

  it("keeps sessions, heartbeats, fleet state and the tmux socket on named volumes the image prepares", () => {
    const dockerfile = readFileSync(join(repoRoot, "Dockerfile"), "utf8");
    const mounts = Object.values(compose.services)
      .flatMap((s) => s.volumes)
      .filter((m) => !m.startsWith("${SKEIN_WORKSPACE"));
    for (const m of mounts) {
      const [vol, target] = m.split(":");
      expect(Object.keys(compose.volumes)).toContain(vol);
      expect(dockerfile, `image prepares ${target}`).toContain(target!);
    }
    const env = { ...compose.services.session!.environment, ...compose.services.fleet!.environment };
    for (const dir of [env.SKEIN_SESSIONS_DIR, env.SKEIN_HEARTBEAT_DIR, env.SKEIN_FLEET_STATE_DIR, env.TMUX_TMPDIR])
      expect(mounts.some((m) => m.endsWith(`:${dir}`)), `${dir} is on a volume`).toBe(true);
  });

  it("resolves host.docker.internal on Linux too (.env.example points Ollama there)", () => {
    expect(readFileSync(join(repoRoot, ".env.example"), "utf8")).toContain("host.docker.internal");
    for (const svc of Object.values(compose.services)) expect(svc.extra_hosts).toContain("host.docker.internal:${SKEIN_HOST_GATEWAY:-host-gateway}");
  });

  it("mounts a configurable workspace in the fleet container, which the image prepares and the README maps", () => {
    const fleet = compose.services.fleet!;
    // By default a named volume: it starts owned by the image's /workspace owner, the agents' user.
    expect(fleet.volumes).toContain("${SKEIN_WORKSPACE:-workspace}:${SKEIN_WORKSPACE_MOUNT:-/workspace}");
    expect(Object.keys(compose.volumes)).toContain("workspace");
    expect(readFileSync(join(repoRoot, "Dockerfile"), "utf8")).toMatch(/mkdir -p [^\n]*\/workspace/);
    expect(readFileSync(join(repoRoot, "Dockerfile"), "utf8")).toMatch(/chown -R node:node [^\n]*\/workspace/);
    for (const ignore of [".gitignore", ".dockerignore"]) expect(readFileSync(join(repoRoot, ignore), "utf8"), ignore).toMatch(/^\/?workspace\/?$/m);
    const example = readFileSync(join(repoRoot, ".env.example"), "utf8");
    expect(example).toMatch(/^SKEIN_WORKSPACE=/m);
    expect(example).toMatch(/^SKEIN_WORKSPACE_MOUNT=/m);
    expect(readme).toContain("SKEIN_WORKSPACE_MOUNT");
  });

  it("serves metrics beyond loopback only inside the compose network, saying so explicitly, and publishes no metrics port", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.environment[`SKEIN_${name.toUpperCase()}_METRICS_ADDR`]).toMatch(/^0\.0\.0\.0:\d+$/);
      expect(svc.environment.SKEIN_METRICS_PUBLIC).toBe("true");
      expect(svc.environment.SKEIN_METRICS_ADDR).toBeUndefined();
      expect(svc.ports.some((p) => p.includes("946"))).toBe(false);
    }
  });

  it("uses only settings the README documents", () => {
    const documented = new Set([...readme.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));
    for (const svc of Object.values(compose.services))
      for (const key of Object.keys(svc.environment)) expect(documented.has(key), `${key} in README`).toBe(true);
  });

  it("healthchecks with the skein CLI, as the images do", () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.healthcheck.test).toEqual(["CMD", "node", "/app/packages/cli/bin/skein.js", "health", "--service", name]);
    }
  });
});

describe("the containers' start commands, run directly", () => {
  const temp = mkdtempSync(join(tmpdir(), "skein-container-"));
  const socket = `skein-test-container-${process.pid}`;
  afterAll(() => {
    spawnSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore", env: { ...process.env, TMUX_TMPDIR: join(temp, "tmux") } });
    rmSync(temp, { recursive: true, force: true });
  });

  it.each(["session", "fleet"] as const)("%s starts with the image's and compose's environment and passes its healthcheck", async (name) => {
    const line = lineage(stages, name);
    const cmd = execForm(line, "CMD");
    expect(cmd.slice(0, 2)).toEqual(["node", `services/${name}/dist/main.js`]);
    const token = "container-test-token";
    const env: Record<string, string> = { ...envOf(line) };
    for (const [k, v] of Object.entries(compose.services[name]!.environment)) env[k] = v.replace(/^\$\{[^}]*\}$/, "");
    Object.assign(env, {
      SKEIN_AUTH_TOKEN: token,
      [ADDR[name]]: "0.0.0.0:0",
      // The compose addresses with port 0: a test must not take 9464/9465 on this host.
      [`SKEIN_${name.toUpperCase()}_METRICS_ADDR`]: "0.0.0.0:0",
      SKEIN_SESSIONS_DIR: join(temp, "sessions"),
      SKEIN_HEARTBEAT_DIR: join(temp, "heartbeats"),
      SKEIN_FLEET_STATE_DIR: join(temp, "state"),
      TMUX_TMPDIR: join(temp, "tmux"),
      SKEIN_TMUX_SOCKET: socket,
    });
    const svc = await startService(name, env);
    try {
      const health = execForm(line, "HEALTHCHECK");
      const r = spawnSync(health[0] === "node" ? process.execPath : health[0]!, [inRepo(health[1]!), ...health.slice(2)], {
        env: { ...process.env, [ADDR[name]]: `127.0.0.1:${svc.port}` },
        encoding: "utf8",
        timeout: 20_000,
      });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    } finally {
      expect((await svc.stop()).code).toBe(0);
    }
  });
});
