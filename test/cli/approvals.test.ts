// The CLI's tool-approval commands against the real session service with a real stdio MCP
// server configured service-wide (SKEIN_EXTENSIONS): `session new --mode`, `session mode`,
// `skein chat`'s question, `session approvals`, `session approve|deny [--always]`, `session ls`.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { openaiText, openaiToolCalls, repoRoot, startOpenAIServer, startService, type FakeModelServer, type ServiceProcess } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { killClis, runCli, spawnCli, sessionServiceEnv } from "./cli.js";

let dir: string;
let model: FakeModelServer;
let svc: ServiceProcess;
let env: Record<string, string>;
let log: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-cli-approvals-"));
  log = join(dir, "append.log");
  model = await startOpenAIServer();
  const fx = { name: "fx", cmd: process.execPath, args: [`${repoRoot}services/session/test/extensions/fixtures/approval-server.mjs`], env: { APPROVAL_LOG: log } };
  svc = await startService("session", {
    ...sessionServiceEnv(dir, model.baseURL),
    SKEIN_EXTENSIONS: JSON.stringify([fx]),
  });
  env = { SKEIN_SESSION_ADDR: svc.address };
});

afterEach(() => killClis());

afterAll(async () => {
  await svc?.stop("SIGKILL");
  await model?.close();
  await rm(dir, { recursive: true, force: true });
});

const appended = () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []);

it("`skein chat` asks before a tool runs; y runs it and the reply goes on", async () => {
  const created = await runCli(["session", "new", "--dir", dir, "--mode", "approve"], env);
  expect(created.code, created.stderr).toBe(0);
  const id = created.stdout.trim();
  expect((await runCli(["session", "show", id], env)).stdout).toMatch(/mode\s+approve/);
  model.enqueue({ events: openaiToolCalls([{ id: "call_chat", name: "fx__append", args: { line: "from chat" } }]) }, { events: openaiText("Appended it.") });
  const c = spawnCli(["chat", id], env);
  c.proc.stdin!.write("append something\n");
  await c.waitFor(/Allow fx__append \{"line":"from chat"\}\? \[y\]es \/ \[a\]lways \/ \[n\]o \/ \[d\]eny always $/);
  c.proc.stdin!.write("y\n");
  await c.waitFor(/Appended it\.\n> $/);
  c.proc.stdin!.end();
  expect((await c.result).code).toBe(0);
  expect(appended()).toEqual(["from chat"]);
});

it("`session approvals`, `ls`, `deny --always` and `session mode` from other commands while a reply waits", async () => {
  const id = (await runCli(["session", "new", "--dir", dir, "--mode", "approve"], env)).stdout.trim();
  model.enqueue({ events: openaiToolCalls([{ id: "call_cli", name: "fx__append", args: { line: "never" } }]) }, { events: openaiText("Refused, fine.") });
  const send = spawnCli(["send", id, "append", "again"], env);
  let waiting = "";
  for (let i = 0; i < 200 && !waiting.includes("call_cli"); i++) {
    waiting = (await runCli(["session", "approvals", id], env)).stdout;
    if (!waiting.includes("call_cli")) await new Promise((r) => setTimeout(r, 50));
  }
  expect(waiting).toMatch(new RegExp(`${id}\\s+call_cli\\s+fx__append \\{"line":"never"\\}`));
  expect((await runCli(["session", "approvals"], env)).stdout).toContain("call_cli");
  expect((await runCli(["session", "ls"], env)).stdout.split("\n").find((l) => l.startsWith(id))).toMatch(/waiting for approval \(1\)$/);

  const denied = await runCli(["session", "deny", id, "call_cli", "--always"], env);
  expect(denied).toMatchObject({ code: 0, stdout: "denied call_cli (always)\n" });
  const r = await send.result;
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Refused, fine.");
  expect(appended()).toEqual(["from chat"]);
  const perms = parseYaml(readFileSync(join(dir, "config", "goose", "permission.yaml"), "utf8")) as { user: { never_allow: string[] } };
  expect(perms.user.never_allow).toEqual(["fx__append"]);

  expect(await runCli(["session", "mode", id, "chat"], env)).toMatchObject({ code: 0, stdout: `${id}: chat\n` });
  const bad = await runCli(["session", "mode", id, "sometimes"], env);
  expect(bad.code).toBe(2);
  expect((await runCli(["session", "approvals", id], env)).stdout).toBe("nothing waits for approval\n");
});
