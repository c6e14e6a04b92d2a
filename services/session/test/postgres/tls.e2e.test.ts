import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { session as pb } from "@skein/proto";
import { call, closeClients, connect, makeTestCerts, md, startPostgres, startService, type PostgresCluster, type ServiceProcess, type TestCerts } from "@skein/testkit";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * PostgreSQL over TLS with a private CA: node-postgres reads sslmode=require
 * as verify-full against the system CAs, so without SKEIN_DATABASE_CA the
 * service cannot connect; with it, it connects over TLS.
 */

const TOKEN = "tls-test-token";
let certs: TestCerts;
let keyDir: string;
let db: PostgresCluster;
let url: string;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  certs = makeTestCerts();
  // The server's key must belong to the user the cluster runs as (postgres when we are root) and be 0600.
  keyDir = mkdtempSync(join(tmpdir(), "skein-pg-tls-"));
  chmodSync(keyDir, 0o755);
  for (const f of ["server.pem", "server.key"]) copyFileSync(join(certs.dir, f), join(keyDir, f));
  chmodSync(join(keyDir, "server.key"), 0o600);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }));
    for (const f of ["server.pem", "server.key"]) chownSync(join(keyDir, f), uid, gid);
  }
  db = await startPostgres({ settings: { ssl: "on", ssl_cert_file: join(keyDir, "server.pem"), ssl_key_file: join(keyDir, "server.key") } });
  url = `${await db.createDatabase()}?sslmode=require`;
}, 120_000);

afterAll(async () => {
  closeClients();
  for (const s of services) await s.stop();
  await db?.stop();
  certs?.cleanup();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

describe("SKEIN_DATABASE_CA", () => {
  const env = () => ({ SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: url, SKEIN_AUTH_TOKEN: TOKEN, SKEIN_PROVIDER: "openai", SKEIN_MODEL: "m", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" });

  it("without it, a server certificate from a private CA is refused at start: one line, no password", async () => {
    const refused = await startService("session", env(), { expectExit: true, readyTimeoutMs: 60_000 });
    services.push(refused);
    expect((await refused.exited).code).toBe(2);
    // node-postgres itself warns that sslmode=require means verify-full; skein's own answer is one line.
    const said = refused.output.filter((l) => l.startsWith("skein session:"));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/SKEIN_DATABASE_URL=.* cannot be used: unable to verify the first certificate/);
    expect(refused.output.join("\n")).not.toContain(db.password);
  });

  it("with the CA, the service connects over TLS and serves", async () => {
    const svc = await startService("session", { ...env(), SKEIN_DATABASE_CA: certs.ca }, { readyTimeoutMs: 60_000 });
    services.push(svc);
    const c = connect(pb.SessionServiceClient, svc.address);
    const created = await call<pb.CreateSessionRequest, pb.CreateSessionResponse>(c, c.createSession, pb.CreateSessionRequest.fromPartial({ workingDir: "/tmp" }), md({ token: TOKEN }));
    expect(created.session!.id).not.toBe("");
    const check = new pg.Client({ connectionString: db.url() });
    await check.connect();
    try {
      const name = new URL(url).pathname.slice(1);
      const r = await check.query<{ ssl: boolean }>("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1", [name]);
      expect(r.rows.length).toBeGreaterThan(0);
      expect(r.rows.every((row) => row.ssl)).toBe(true);
    } finally {
      await check.end();
    }
  });
});
