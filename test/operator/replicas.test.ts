import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "@skein/testkit";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { parseDockerfile } from "./dockerfile.js";

type Obj = Record<string, unknown>;
interface ComposeService {
  build?: { target: string };
  image: string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
}
const compose = parse(readFileSync(join(repoRoot, "docker-compose.replicas.yml"), "utf8"), { merge: true }) as { services: Record<string, ComposeService> };
const k8sDir = join(repoRoot, "deploy", "k8s");
const manifests = readdirSync(k8sDir)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => parseAllDocuments(readFileSync(join(k8sDir, f), "utf8")).map((d) => {
    expect(d.errors, f).toEqual([]);
    return d.toJS() as Obj & { kind: string; metadata: { name: string } };
  }));
const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const docs = readFileSync(join(repoRoot, "docs", "containers.md"), "utf8");

describe("docker-compose.replicas.yml", () => {
  const replicas = Object.entries(compose.services).filter(([, s]) => s.build?.target === "session");

  it("runs two session replicas from the Dockerfile's session target on one PostgreSQL, started once it is healthy", () => {
    expect(replicas.map(([n]) => n).sort()).toEqual(["session-a", "session-b"]);
    expect(parseDockerfile(join(repoRoot, "Dockerfile")).some((s) => s.name === "session")).toBe(true);
    const pgService = compose.services.postgres!;
    expect(pgService.image).toMatch(/^postgres:\d+/);
    expect(pgService.healthcheck!.test).toContain("pg_isready");
    for (const [, s] of replicas) {
      expect(s.environment!.SKEIN_SESSION_STORE).toBe("postgres");
      expect(s.environment!.SKEIN_DATABASE_URL).toMatch(/^postgresql:\/\/skein:\$\{POSTGRES_PASSWORD:\?.+\}@postgres:5432\/skein$/);
      expect(s.environment!.SKEIN_AUTH_TOKEN).toMatch(/^\$\{SKEIN_AUTH_TOKEN:\?.+\}$/);
      expect(s.depends_on!.postgres!.condition).toBe("service_healthy");
      expect(s.healthcheck!.test).toEqual(["CMD", "node", "/app/packages/cli/bin/skein.js", "health", "--service", "session"]);
      expect(s.ports, "replicas are reached through the proxy only").toBeUndefined();
      expect(Number.parseInt(s.stop_grace_period!, 10) * 1000).toBeGreaterThan(Number(s.environment!.SKEIN_SHUTDOWN_GRACE_MS));
    }
    expect(readFileSync(join(repoRoot, ".env.example"), "utf8")).toMatch(/^POSTGRES_PASSWORD=/m);
  });

  it("puts both replicas behind one address: an nginx grpc_pass upstream naming each", () => {
    const proxy = compose.services["session-proxy"]!;
    expect(proxy.ports).toEqual(["127.0.0.1:50051:50051"]);
    for (const [name] of replicas) expect(proxy.depends_on![name]!.condition).toBe("service_healthy");
    const mount = proxy.volumes!.find((v) => v.includes("grpc.conf"))!;
    const conf = readFileSync(join(repoRoot, mount.split(":")[0]!), "utf8");
    expect(conf).toMatch(/listen 50051 http2;/);
    expect(conf).toMatch(/grpc_pass grpc:\/\/skein_session;/);
    for (const [name] of replicas) expect(conf).toContain(`server ${name}:50051`);
  });
});

describe("deploy/k8s", () => {
  const [deployment] = byKind("Deployment") as unknown as {
    spec: { replicas: number; selector: { matchLabels: Obj }; template: { metadata: { labels: Obj }; spec: { containers: { ports: { name: string; containerPort: number }[]; env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[]; readinessProbe: { grpc: { port: number } } }[] } } };
  }[];
  const [secret] = byKind("Secret") as unknown as { metadata: { name: string }; stringData: Record<string, string> }[];

  it("a Deployment of N ≥ 2 replicas on PostgreSQL, ready on gRPC health, token and database URL from a Secret", () => {
    expect(deployment!.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment!.spec.template.metadata.labels).toMatchObject(deployment!.spec.selector.matchLabels);
    const c = deployment!.spec.template.spec.containers[0]!;
    const grpcPort = c.ports.find((p) => p.name === "grpc")!.containerPort;
    expect(c.readinessProbe.grpc.port).toBe(grpcPort);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    expect(env.SKEIN_SESSION_ADDR!.value).toBe(`0.0.0.0:${grpcPort}`);
    expect(env.SKEIN_SESSION_STORE!.value).toBe("postgres");
    for (const [name, key] of [["SKEIN_DATABASE_URL", "database-url"], ["SKEIN_AUTH_TOKEN", "auth-token"]] as const) {
      expect(env[name]!.valueFrom!.secretKeyRef).toEqual({ name: secret!.metadata.name, key });
      expect(Object.keys(secret!.stringData)).toContain(key);
    }
    expect(secret!.stringData["database-url"]).toMatch(/^postgresql:\/\//);
  });

  it("Services select the Deployment's pods on its gRPC port: one virtual IP and a headless one for round_robin", () => {
    const services = byKind("Service") as unknown as { metadata: { name: string }; spec: { clusterIP?: string; selector: Obj; ports: { targetPort: string }[] } }[];
    expect(services.map((s) => s.metadata.name).sort()).toEqual(["skein-session", "skein-session-headless"]);
    for (const s of services) {
      expect(deployment!.spec.template.metadata.labels).toMatchObject(s.spec.selector);
      expect(s.spec.ports.map((p) => p.targetPort)).toEqual(["grpc"]);
    }
    expect(services.find((s) => s.metadata.name === "skein-session-headless")!.spec.clusterIP).toBe("None");
    const kustomization = parse(readFileSync(join(k8sDir, "kustomization.yaml"), "utf8")) as { resources: string[] };
    expect(kustomization.resources.sort()).toEqual(readdirSync(k8sDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort());
  });

  it("the docs say how to run the replicas and how a gRPC client balances", () => {
    expect(docs).toContain("docker compose -f docker-compose.replicas.yml");
    expect(docs).toContain("kubectl apply -k deploy/k8s");
    expect(docs).toMatch(/round_robin/);
  });
});
