import { Writable } from "node:stream";
import pino from "pino";
import { startService, type PostgresCluster } from "@skein/testkit";
import { testPostgres } from "@skein/testkit/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { passwordOf, redactorFor, redactUrl, PostgresSessionStore } from "@skein/goose-sessions/postgres";
import { EVENTS_CHANNEL } from "../../src/cluster/postgres/event-log.js";
import { PgListener } from "../../src/cluster/postgres/listener.js";

/** A logger whose every line is kept, to search for the password. */
function capturingLogger(): { log: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ level: "debug" }, sink), text: () => lines.join("") };
}

describe("redacting the database URL", () => {
  it("masks the password in the URL, in a password= parameter and wherever it appears in a text", () => {
    expect(redactUrl("postgresql://skein:p%40ss@db:5432/skein?sslmode=require")).toBe("postgresql://skein:***@db:5432/skein?sslmode=require");
    expect(redactUrl("postgresql://db/skein?user=u&password=hunter2")).toBe("postgresql://db/skein?user=u&password=***");
    expect(redactUrl("postgresql://u@db/skein")).toBe("postgresql://u@db/skein");
    expect(redactUrl("not a url //u:hunter2@x")).not.toContain("hunter2");
    expect(passwordOf("postgresql://skein:p%40ss@db/x")).toBe("p@ss");
    const r = redactorFor("postgresql://skein:p%40ss@db/x");
    expect(r("failed for postgresql://skein:p%40ss@db/x: password p@ss rejected (p%40ss)")).toBe("failed for postgresql://skein:***@db/x: password *** rejected (***)");
  });
});

describe("against a real server", () => {
  let cluster: PostgresCluster;
  beforeAll(async () => {
    cluster = await testPostgres();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it("a failed connection's error and the LISTEN connection's logs never contain the password", async () => {
    const url = await cluster.createDatabase();
    const wrong = url.replace(cluster.password, "Wr0ngPassw0rd");
    const { log, text } = capturingLogger();
    const err = (await PostgresSessionStore.open(wrong, log).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/password authentication failed/);
    expect(`${err.message} ${err.stack ?? ""}`).not.toContain("Wr0ngPassw0rd");

    const listener = new PgListener(url, log, { channels: [EVENTS_CHANNEL], applicationName: "redact-listen", reconnectDelayMs: 20 });
    await listener.start();
    try {
      await cluster.terminateConnections(new URL(url).pathname.slice(1), "redact-listen");
      await expect.poll(() => listener.connections).toBe(2);
    } finally {
      await listener.close();
    }
    expect(text()).toMatch(/LISTEN connection dropped/);
    expect(text()).toContain("***");
    expect(text()).not.toContain(cluster.password);
  });

  it("the service exits 2 with one line naming the setting, without the password, when the database is unusable", async () => {
    const url = await cluster.createDatabase();
    const wrong = url.replace(cluster.password, "Wr0ngPassw0rd");
    const svc = await startService("session", { SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: wrong }, { expectExit: true });
    const exit = await svc.exited;
    expect(exit.code).toBe(2);
    expect(svc.output).toHaveLength(1);
    expect(svc.output[0]).toMatch(/^skein session: SKEIN_DATABASE_URL=".*\*\*\*.*" cannot be used: .*password authentication failed/);
    const all = [...svc.output, ...svc.logs.map((l) => JSON.stringify(l))].join("\n");
    expect(all).not.toContain("Wr0ngPassw0rd");
    expect(all).not.toContain(cluster.password);

    // Nobody listens on this port: refused at once, one line.
    const closedPort = url.replace(/:(\d+)\//, ":1/");
    const down = await startService("session", { SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: closedPort }, { expectExit: true });
    expect((await down.exited).code).toBe(2);
    expect(down.output).toHaveLength(1);
    expect(down.output[0]).toMatch(/cannot be used: .*ECONNREFUSED/);
    expect(down.output[0]).not.toContain(cluster.password);

    const bad = await startService("session", { SKEIN_SESSION_STORE: "postgres", SKEIN_DATABASE_URL: url.replace("postgresql:", "mysql:") }, { expectExit: true });
    expect((await bad.exited).code).toBe(2);
    const badText = [...bad.output, ...bad.logs.map((l) => JSON.stringify(l))].join("\n");
    expect(badText).toMatch(/SKEIN_DATABASE_URL=.*\*\*\*.*must start with postgresql:\/\//);
    expect(badText).not.toContain(cluster.password);
  });
});
