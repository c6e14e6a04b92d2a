import { readFileSync } from "node:fs";
import { credentials, Metadata, type ChannelCredentials } from "@grpc/grpc-js";
import { health } from "@skein/proto";
import { makeTestCerts, startService, type ServiceProcess, type TestCerts } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

let certs: TestCerts;
let svc: ServiceProcess | undefined;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => certs?.cleanup());
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

const read = (p: string) => readFileSync(p);

/** Health/Check over the given credentials; resolves "SERVING" or the error's message. */
function check(port: number, creds: ChannelCredentials): Promise<string> {
  const c = new health.HealthClient(`localhost:${port}`, creds);
  return new Promise<string>((resolve) => {
    c.check({ service: "" }, new Metadata(), { deadline: Date.now() + 5000 }, (err, res) => {
      c.close();
      resolve(err ? `error: ${err.message}` : health.HealthCheckResponse_ServingStatus[res.status]);
    });
  });
}

describe("server TLS", () => {
  it("serves TLS to clients that trust its CA, and nothing to plaintext clients", async () => {
    svc = await startService("fleet", { SKEIN_TLS_CERT: certs.serverCert, SKEIN_TLS_KEY: certs.serverKey });
    expect(svc.logs.find((l) => l.msg === "listening")?.tls).toBe("tls");
    expect(await check(svc.port, credentials.createSsl(read(certs.ca)))).toBe("SERVING");
    expect(await check(svc.port, credentials.createInsecure())).toMatch(/^error/);
    expect(await check(svc.port, credentials.createSsl(read(certs.otherCa)))).toMatch(/^error/);
  });

  it("refuses to start with only half of the key pair, naming the variables", async () => {
    svc = await startService("session", { SKEIN_TLS_CERT: certs.serverCert }, { expectExit: true });
    expect((await svc.exited).code).toBe(2);
    expect(svc.output.join("\n")).toContain("SKEIN_TLS_CERT and SKEIN_TLS_KEY must be set together");
  });
});

describe("mutual TLS (SKEIN_TLS_CA)", () => {
  it("accepts only clients with a certificate from that CA", async () => {
    svc = await startService("session", { SKEIN_TLS_CERT: certs.serverCert, SKEIN_TLS_KEY: certs.serverKey, SKEIN_TLS_CA: certs.ca });
    expect(svc.logs.find((l) => l.msg === "listening")?.tls).toBe("mtls");
    const ca = read(certs.ca);
    expect(await check(svc.port, credentials.createSsl(ca, read(certs.clientKey), read(certs.clientCert)))).toBe("SERVING");
    expect(await check(svc.port, credentials.createSsl(ca))).toMatch(/^error/);
    expect(await check(svc.port, credentials.createSsl(ca, read(certs.otherClientKey), read(certs.otherClientCert)))).toMatch(/^error/);
  });
});
