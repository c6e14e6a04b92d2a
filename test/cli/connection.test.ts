import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCerts, startService, type ServiceProcess, type TestCerts } from "@skein/testkit";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectOneLineError, killClis, runCli } from "./cli.js";

const TOKEN = "cli-test-token";
let dir: string;
const services: ServiceProcess[] = [];
const certs: TestCerts[] = [];

async function start(name: "session" | "fleet", env: Record<string, string> = {}): Promise<ServiceProcess> {
  // startService gives each service its own HOME, data directories and tmux socket.
  const svc = await startService(name, env);
  services.push(svc);
  return svc;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-cli-conn-"));
});

afterEach(async () => {
  killClis();
  // No agents are started here, so the fleet services leave no tmux server behind.
  await Promise.all(services.splice(0).map((s) => s.stop("SIGKILL")));
  for (const c of certs.splice(0)) c.cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** An address where nothing listens. */
const NOWHERE = "127.0.0.1:1";

describe("skein health", () => {
  it("exits 0 only when both services are SERVING", async () => {
    const session = await start("session");
    const fleet = await start("fleet");
    const env = { SKEIN_SESSION_ADDR: session.address, SKEIN_FLEET_ADDR: fleet.address };
    const up = await runCli(["health"], env);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`session  SERVING      ${session.address}\nfleet    SERVING      ${fleet.address}\n`);

    await fleet.stop("SIGKILL");
    const down = await runCli(["health"], env);
    expect(down.code).toBe(1);
    const [sessionLine, fleetLine] = down.stdout.trimEnd().split("\n");
    expect(sessionLine).toMatch(/^session\s+SERVING\s/);
    expect(fleetLine).toMatch(/^fleet\s+UNREACHABLE\s+.*fleet service not reachable at /);

    // One service at a time, for per-service container healthchecks.
    expect((await runCli(["health", "--service", "session"], env)).code).toBe(0);
    expect((await runCli(["health", "--service", "fleet"], env)).code).toBe(1);
    const json = JSON.parse((await runCli(["health", "--json"], env)).stdout) as Record<string, { status: string; address: string }>;
    expect(json.session).toEqual({ status: "SERVING", address: session.address, error: null });
    expect(json.fleet!.status).toBe("UNREACHABLE");
    const bad = await runCli(["health", "--service", "both"], env);
    expect(bad.code).toBe(2);
  });

  it("addresses given as flags win over the environment", async () => {
    const session = await start("session");
    const r = await runCli(["health", "--service", "session", "--session-addr", session.address], { SKEIN_SESSION_ADDR: NOWHERE });
    expect(r.code).toBe(0);
  });
});

describe("errors", () => {
  it("an unreachable service is one line naming the address and the variable, exit 1", async () => {
    const r = await runCli(["session", "ls"], { SKEIN_SESSION_ADDR: NOWHERE });
    expect(r.code).toBe(1);
    expect(expectOneLineError(r)).toBe(`skein: session service not reachable at ${NOWHERE} (is it running? set SKEIN_SESSION_ADDR)`);
    const f = await runCli(["fleet", "ls"], { SKEIN_FLEET_ADDR: NOWHERE });
    expect(expectOneLineError(f)).toBe(`skein: fleet service not reachable at ${NOWHERE} (is it running? set SKEIN_FLEET_ADDR)`);
    const stream = await runCli(["send", "some-id", "hi"], { SKEIN_SESSION_ADDR: NOWHERE });
    expect(stream.code).toBe(1);
    expect(expectOneLineError(stream)).toContain("session service not reachable");
  });

  it("asks for SKEIN_AUTH_TOKEN when the service wants one, and takes it from the flag or the environment", async () => {
    const session = await start("session", { SKEIN_AUTH_TOKEN: TOKEN });
    const env = { SKEIN_SESSION_ADDR: session.address };
    const none = await runCli(["session", "ls"], env);
    expect(none.code).toBe(1);
    expect(expectOneLineError(none)).toBe("skein: UNAUTHENTICATED: set SKEIN_AUTH_TOKEN");
    const wrong = await runCli(["session", "ls"], { ...env, SKEIN_AUTH_TOKEN: "nope" });
    expect(expectOneLineError(wrong)).toBe("skein: UNAUTHENTICATED: invalid bearer token (check SKEIN_AUTH_TOKEN)");
    expect((await runCli(["session", "ls", "--json"], { ...env, SKEIN_AUTH_TOKEN: TOKEN })).code).toBe(0);
    expect((await runCli(["--token", TOKEN, "session", "ls"], { ...env, SKEIN_AUTH_TOKEN: "nope" })).code).toBe(0);
  });
});

describe("TLS", () => {
  const makeCerts = () => {
    const c = makeTestCerts();
    certs.push(c);
    return c;
  };

  it("speaks TLS when only SKEIN_TLS_CERT/KEY are set, as a container healthcheck does (self-signed server)", async () => {
    const c = makeCerts();
    const tlsEnv = { SKEIN_TLS_CERT: c.selfSignedCert, SKEIN_TLS_KEY: c.selfSignedKey };
    const fleetSvc = await start("fleet", tlsEnv);
    const r = await runCli(["health", "--service", "fleet"], { ...tlsEnv, SKEIN_FLEET_ADDR: fleetSvc.address });
    expect(r.code, r.stderr).toBe(0);
    const plaintext = await runCli(["health", "--service", "fleet"], { SKEIN_FLEET_ADDR: fleetSvc.address });
    expect(plaintext.code).toBe(1);
  });

  it("verifies the server against SKEIN_TLS_CA and presents SKEIN_TLS_CERT/KEY (mTLS)", async () => {
    const c = makeCerts();
    const session = await start("session", { SKEIN_TLS_CERT: c.serverCert, SKEIN_TLS_KEY: c.serverKey, SKEIN_TLS_CA: c.ca });
    const env = { SKEIN_SESSION_ADDR: session.address };
    const mtls = { ...env, SKEIN_TLS_CA: c.ca, SKEIN_TLS_CERT: c.clientCert, SKEIN_TLS_KEY: c.clientKey };
    const ok = await runCli(["session", "ls", "--json"], mtls);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await runCli(["health", "--service", "session"], mtls)).code).toBe(0);
    // The same through flags.
    const flags = ["--tls-ca", c.ca, "--tls-cert", c.clientCert, "--tls-key", c.clientKey];
    expect((await runCli(["session", "ls", ...flags], env)).code).toBe(0);

    // Plaintext against a TLS port looks to grpc-js like a failed connection.
    const plaintext = await runCli(["session", "ls"], env);
    expect(plaintext.code).toBe(1);
    expect(expectOneLineError(plaintext)).toContain("session service not reachable");
    const noClientCert = await runCli(["session", "ls"], { ...env, SKEIN_TLS_CA: c.ca });
    expect(noClientCert.code).toBe(1);
    expect(expectOneLineError(noClientCert)).toMatch(/^skein: TLS connection to the session service at .* failed: .*certificate required \(check SKEIN_TLS_CA/);
    const unreadable = await runCli(["session", "ls"], { ...env, SKEIN_TLS_CA: join(dir, "missing.pem") });
    expect(expectOneLineError(unreadable)).toBe(`skein: SKEIN_TLS_CA=${join(dir, "missing.pem")}: cannot read (ENOENT)`);
  });
});
