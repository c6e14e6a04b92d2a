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
  healthcheck?: { test: string[] | string };
  ports?: string[];
  volumes?: string[];
  stop_grace_period?: string;
  deploy?: { replicas?: number };
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
// The README's Containers section points to docs/containers.md: both are the user's documentation.
const readme = readFileSync(join(repoRoot, "README.md"), "utf8") + readFileSync(join(repoRoot, "docs", "containers.md"), "utf8");

describe("docker-compose.replicas.yml", () => {
  const replicas = Object.entries(compose.services).filter(([, s]) => s.build?.target === "session");

  it("runs two session replicas from the Dockerfile's session target on one PostgreSQL, started once it is healthy", () => {
    // One service with two replicas: they share its DNS name, which the proxy resolves.
    expect(replicas.map(([n]) => n)).toEqual(["session"]);
    expect(replicas[0]![1].deploy!.replicas).toBe(2);
    expect(parseDockerfile(join(repoRoot, "Dockerfile")).some((s) => s.name === "session")).toBe(true);
    const pgService = compose.services.postgres!;
    expect(pgService.image).toMatch(/^postgres:\d+/);
    expect(pgService.healthcheck!.test).toContain("pg_isready");
    for (const [, s] of replicas) {
      expect(s.environment!.SKEIN_SESSION_STORE).toBe("postgres");
      expect(s.environment!.SKEIN_DATABASE_URL).toMatch(/^postgresql:\/\/skein:\$\{POSTGRES_PASSWORD:\?.+\}@postgres:5432\/skein$/);
      expect(s.environment!.SKEIN_AUTH_TOKEN).toMatch(/^\$\{SKEIN_AUTH_TOKEN:\?.+\}$/);
      expect(s.depends_on!.postgres!.condition).toBe("service_healthy");
      expect(s.healthcheck!.test).toBe("node /app/packages/cli/bin/skein.js health --service session");
      expect(s.ports, "replicas are reached through the proxy only").toBeUndefined();
      expect(Number.parseInt(s.stop_grace_period!, 10) * 1000).toBeGreaterThan(Number(s.environment!.SKEIN_SHUTDOWN_GRACE_MS));
    }
    expect(readFileSync(join(repoRoot, ".env.example"), "utf8")).toMatch(/^POSTGRES_PASSWORD=/m);
  });

  it("puts both replicas behind one address: nginx finding them by DNS at call time, healthy only when a call through it is", () => {
    const proxy = compose.services["session-proxy"]!;
    expect(proxy.ports).toEqual(["127.0.0.1:50051:50051"]);
    for (const [name] of replicas) expect(proxy.depends_on![name]!.condition).toBe("service_healthy");
    const mount = proxy.volumes!.find((v) => v.includes("grpc.conf"))!;
    expect(mount.split(":")[1]).toMatch(/^\/etc\/nginx\/templates\/.+\.conf\.template$/);
    const conf = readFileSync(join(repoRoot, mount.split(":")[0]!), "utf8").replace(/#.*$/gm, "");
    expect(conf).toMatch(/listen 50051 http2;/);
    // Re-resolution: the container's DNS (filled in by the image's entrypoint), a short validity, a variable in grpc_pass.
    const envsh = proxy.volumes!.find((v) => v.includes(".envsh"))!;
    expect(envsh.split(":")[1]).toMatch(/^\/docker-entrypoint\.d\/\d\d-[\w-]+\.envsh$/);
    expect(readFileSync(join(repoRoot, envsh.split(":")[0]!), "utf8")).toContain("export SKEIN_DNS_RESOLVER");
    expect(conf).toMatch(/resolver \$\{SKEIN_DNS_RESOLVER\} valid=\d+s/);
    const target = /set \$(\w+) ([\w-]+):50051;/.exec(conf)!;
    expect(conf).toContain(`grpc_pass grpc://$${target[1]};`);
    expect(replicas.map(([n]) => n)).toContain(target[2]);
    expect(conf).toMatch(/grpc_connect_timeout [1-3]s;/);
    // Only values nginx accepts (an unknown one stops it at start).
    const next = /grpc_next_upstream ([^;]+);/.exec(conf)![1]!.split(/\s+/);
    const valid = ["error", "timeout", "invalid_header", "http_500", "http_502", "http_503", "http_504", "http_403", "http_404", "http_429", "non_idempotent", "off"];
    for (const v of next) expect(valid, v).toContain(v);
    expect([proxy.healthcheck!.test].flat().join(" ")).toContain("/grpc.health.v1.Health/Check");
  });
});

describe("deploy/k8s", () => {
  const [deployment] = byKind("Deployment") as unknown as {
    spec: { replicas: number; selector: { matchLabels: Obj }; template: { metadata: { labels: Obj }; spec: {
      securityContext: Obj;
      topologySpreadConstraints: { topologyKey: string; labelSelector: { matchLabels: Obj } }[];
      containers: {
        image: string;
        securityContext: Obj;
        ports: { name: string; containerPort: number }[];
        env: { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
        envFrom: Obj[];
        readinessProbe: { grpc: { port: number } };
      }[];
    } } };
  }[];
  const kustomization = parse(readFileSync(join(k8sDir, "kustomization.yaml"), "utf8")) as {
    resources: string[];
    images: { name: string; newName?: string; newTag?: string }[];
    secretGenerator: { name: string; envs: string[] }[];
    configMapGenerator: { name: string; envs: string[] }[];
  };
  const envKeys = (file: string) => [...readFileSync(join(k8sDir, file), "utf8").matchAll(/^([\w-]+)=/gm)].map((m) => m[1]);

  it("a Deployment of N ≥ 2 replicas on PostgreSQL, ready on gRPC health, token and database URL from a generated Secret", () => {
    expect(deployment!.spec.replicas).toBeGreaterThanOrEqual(2);
    expect(deployment!.spec.template.metadata.labels).toMatchObject(deployment!.spec.selector.matchLabels);
    const c = deployment!.spec.template.spec.containers[0]!;
    const grpcPort = c.ports.find((p) => p.name === "grpc")!.containerPort;
    expect(c.readinessProbe.grpc.port).toBe(grpcPort);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    expect(env.SKEIN_SESSION_ADDR!.value).toBe(`0.0.0.0:${grpcPort}`);
    expect(env.SKEIN_SESSION_STORE!.value).toBe("postgres");
    // The Secret comes from secret.env, which git ignores; a committed example lists its keys.
    const [generated] = kustomization.secretGenerator;
    expect(byKind("Secret")).toEqual([]);
    expect(generated!.envs).toEqual(["secret.env"]);
    expect(readFileSync(join(repoRoot, ".gitignore"), "utf8")).toMatch(/^\/?deploy\/k8s\/secret\.env$/m);
    for (const [name, key] of [["SKEIN_DATABASE_URL", "database-url"], ["SKEIN_AUTH_TOKEN", "auth-token"], ["OPENAI_API_KEY", "openai-api-key"]] as const) {
      expect(env[name]!.valueFrom!.secretKeyRef).toMatchObject({ name: generated!.name, key });
      expect(envKeys("secret.env.example")).toContain(key);
    }
    // Provider settings reach the pods from a ConfigMap made from provider.env.
    const [provider] = kustomization.configMapGenerator;
    expect(c.envFrom).toContainEqual({ configMapRef: { name: provider!.name } });
    expect(envKeys(provider!.envs[0]!)).toEqual(expect.arrayContaining(["SKEIN_PROVIDER", "SKEIN_MODEL"]));
  });

  it("runs at the restricted Pod Security level, from an image the kustomization pins", () => {
    const pod = deployment!.spec.template.spec;
    const c = pod.containers[0]!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: "RuntimeDefault" } });
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(c.image).not.toMatch(/:latest$/);
    expect(kustomization.images.map((i) => i.name)).toContain(c.image.split(":")[0]);
    expect(kustomization.images.find((i) => i.name === c.image)!.newTag).toMatch(/^[\w.-]+$/);
    expect(readme).toContain("kustomize edit set image skein-session=");
  });

  it("spreads the replicas and lets voluntary disruptions take one at a time", () => {
    const pod = deployment!.spec.template.spec;
    expect(pod.topologySpreadConstraints.map((t) => t.topologyKey)).toContain("kubernetes.io/hostname");
    for (const t of pod.topologySpreadConstraints) expect(deployment!.spec.template.metadata.labels).toMatchObject(t.labelSelector.matchLabels);
    const [pdb] = byKind("PodDisruptionBudget") as unknown as { spec: { maxUnavailable?: number; selector: { matchLabels: Obj } } }[];
    expect(pdb!.spec.maxUnavailable).toBe(1);
    expect(deployment!.spec.template.metadata.labels).toMatchObject(pdb!.spec.selector.matchLabels);
  });

  it("Services select the Deployment's pods on its gRPC port: one virtual IP and a headless one for round_robin", () => {
    const services = byKind("Service") as unknown as { metadata: { name: string }; spec: { clusterIP?: string; selector: Obj; ports: { targetPort: string }[] } }[];
    expect(services.map((s) => s.metadata.name).sort()).toEqual(["skein-session", "skein-session-headless"]);
    for (const s of services) {
      expect(deployment!.spec.template.metadata.labels).toMatchObject(s.spec.selector);
      expect(s.spec.ports.map((p) => p.targetPort)).toEqual(["grpc"]);
    }
    expect(services.find((s) => s.metadata.name === "skein-session-headless")!.spec.clusterIP).toBe("None");
    expect([...kustomization.resources].sort()).toEqual(readdirSync(k8sDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort());
  });

  it("the README says how to run the replicas and how a gRPC client balances", () => {
    expect(readme).toContain("docker compose -f docker-compose.replicas.yml");
    expect(readme).toContain("kubectl apply -k deploy/k8s");
    expect(readme).toMatch(/round_robin/);
  });
});
