import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openaiText, openaiToolCalls, startOpenAIServer, startService, type FakeModelServer, type ServiceProcess } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { expectOneLineError, haveScript, killClis, runCli, spawnCli, sessionServiceEnv } from "./cli.js";

let dir: string;
let model: FakeModelServer;
let svc: ServiceProcess;
let env: Record<string, string>;
const MAX_RESPONSE_BYTES = 8192;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "skein-cli-session-"));
  model = await startOpenAIServer();
  svc = await startService("session", {
    ...sessionServiceEnv(dir, model.baseURL),
    // Small responses, so a session's messages come in several GetSession pages.
    SKEIN_MAX_SEND_MESSAGE_BYTES: String(MAX_RESPONSE_BYTES),
  });
  env = { SKEIN_SESSION_ADDR: svc.address };
});

afterEach(() => killClis());

afterAll(async () => {
  await svc?.stop("SIGKILL");
  await model?.close();
  await rm(dir, { recursive: true, force: true });
});

async function newSession(description?: string): Promise<string> {
  const r = await runCli(["session", "new", "--dir", dir, ...(description ? ["--description", description] : [])], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

describe("skein session", () => {
  it("creates, lists, shows and removes sessions, as text and as JSON", async () => {
    const created = await runCli(["session", "new", "--dir", dir, "--description", "cli listing", "--json"], env);
    expect(created.code, created.stderr).toBe(0);
    const createdSession = (JSON.parse(created.stdout) as { session: { id: string; workingDir: string } }).session;
    const id = createdSession.id;
    // The service's default store is goose's sessions.db: goose's YYYYMMDD_N ids.
    expect(id).toMatch(/^\d{8}_\d+$/);
    // Zero and empty values are there too, for scripts.
    expect(createdSession).toMatchObject({ messageCount: 0, runningRequestId: "", extensions: [], lastSeq: 0, totalTokens: null });

    const ls = await runCli(["session", "ls"], env);
    expect(ls.code).toBe(0);
    const header = ls.stdout.split("\n")[0]!;
    expect(header).toMatch(/^ID\s+DESCRIPTION\s+MESSAGES\s+UPDATED/);
    const row = ls.stdout.split("\n").find((l) => l.startsWith(id))!;
    expect(row).toMatch(new RegExp(`^${id}\\s+cli listing\\s+0\\s+\\d+s ago`));

    const lsJson = JSON.parse((await runCli(["--json", "session", "ls"], env)).stdout) as { sessions: { id: string; description: string }[] };
    expect(lsJson.sessions.find((s) => s.id === id)?.description).toBe("cli listing");

    const show = await runCli(["session", "show", id], env);
    expect(show.stdout).toContain(`id           ${id}`);
    expect(show.stdout).toContain(`working dir  ${dir}`);
    const showJson = JSON.parse((await runCli(["session", "show", id, "--json"], env)).stdout) as { session: { id: string; workingDir: string } };
    expect(showJson.session).toMatchObject({ id, workingDir: dir });

    const removed = await runCli(["session", "rm", id], env);
    expect(removed).toMatchObject({ code: 0, stdout: `deleted ${id}\n` });
    const gone = await runCli(["session", "show", id], env);
    expect(gone.code).toBe(1);
    expect(expectOneLineError(gone)).toMatch(/^skein: NOT_FOUND: .*session/);
  });

  it("`session new` defaults to the current directory", async () => {
    const r = await runCli(["session", "new", "--json"], env, { cwd: dir });
    expect((JSON.parse(r.stdout) as { session: { workingDir: string } }).session.workingDir).toBe(dir);
  });

  it("rejects bad usage with exit code 2 and a pointer to --help", async () => {
    const r = await runCli(["session", "show"], env);
    expect(r.code).toBe(2);
    expect(expectOneLineError(r)).toBe("skein: missing session ID (see 'skein session show --help')");
    const unknown = await runCli(["session", "frobnicate"], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'session frobnicate'");
    const help = await runCli(["session", "new", "--help"], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("usage: skein session new [--dir D] [--description T]");
  });
});

describe("skein send", () => {
  it("streams the reply and exits 0; the session holds both messages", async () => {
    const id = await newSession();
    model.enqueue({ events: openaiText("Streamed in pieces.", { pieces: 4 }), delayMs: 5 });
    const r = await runCli(["send", id, "say", "something"], env);
    expect(r).toMatchObject({ code: 0, stdout: "Streamed in pieces.\n", stderr: "" });
    const messages = (model.requests.at(-1)!.messages as { role: string; content: unknown }[]).filter((m) => m.role === "user");
    expect(messages.at(-1)!.content).toBe("say something");

    const show = await runCli(["session", "show", id], env);
    expect(show.stdout).toMatch(/\] user: say something\n/);
    expect(show.stdout).toMatch(/\] assistant: Streamed in pieces\.\n/);
  });

  it("shows tool calls and their results on one line each", async () => {
    const id = await newSession();
    model.enqueue({ events: openaiToolCalls([{ id: "call_1", name: "nope__missing", args: { path: "/etc/hosts" } }]) }, { events: openaiText("Done.") });
    const r = await runCli(["send", id, "use a tool"], env);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe('→ nope__missing {"path":"/etc/hosts"}');
    expect(lines[1]).toMatch(/^← nope__missing error: .+/);
    expect(lines[2]).toBe("Done.");
  });

  it("prints --json events one per line, ending with finished", async () => {
    const id = await newSession();
    const r = await runCli(["send", id, "hi", "--json"], env);
    expect(r.code).toBe(0);
    const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.some((e) => (e.textDelta as { text?: string } | undefined)?.text)).toBe(true);
    expect(events.at(-1)!.finished).toEqual({ reason: "FINISH_REASON_STOP" });
  });

  it("exits non-zero with the provider's error on stderr when the provider fails", async () => {
    const id = await newSession();
    model.enqueue({ status: 500 });
    const r = await runCli(["send", id, "fail please"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^skein: reply error PROVIDER_HTTP_ERROR: .*500/m);
    expect(r.stderr).toContain("skein: reply finished: error");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("reports a busy session as FAILED_PRECONDITION", async () => {
    const id = await newSession();
    model.enqueue({ events: openaiText("slow", { pieces: 1 }).slice(0, 2), ending: "stall" });
    const first = spawnCli(["send", id, "long one"], env);
    first.proc.stdin!.end();
    await first.waitFor(/slow/);
    const second = await runCli(["send", id, "another"], env);
    expect(second.code).toBe(1);
    expect(expectOneLineError(second)).toMatch(/^skein: FAILED_PRECONDITION: .*busy/);
    // Ctrl-C on `send` cancels the run it started.
    first.proc.kill("SIGINT");
    const r = await first.result;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain("skein: reply cancelled");
  });
});

describe("skein watch", () => {
  it("replays a finished reply, follows a new one, and stops on Ctrl-C", async () => {
    const id = await newSession();
    expect((await runCli(["send", id, "first question"], env)).code).toBe(0);
    const w = spawnCli(["watch", id], env);
    await w.waitFor(/· finished: stop \(seq (\d+)\)\n/);
    expect(w.stdout()).toMatch(/^> first question\nHello from the fake model\.\n· finished: stop \(seq \d+\)\n$/);
    const firstSeq = Number(/seq (\d+)/.exec(w.stdout())![1]);

    model.enqueue({ events: openaiText("Live answer.") });
    expect((await runCli(["send", id, "second question"], env)).code).toBe(0);
    await w.waitFor(/Live answer\.\n· finished: stop/);
    w.proc.kill("SIGINT");
    const r = await w.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("> second question\nLive answer.\n");

    // --after skips what was seen.
    const after = spawnCli(["watch", id, "--after", String(firstSeq), "--json"], env);
    await after.waitFor(/FINISH_REASON_STOP/);
    after.proc.kill("SIGINT");
    const events = (await after.result).stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { seq: number });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.seq > firstSeq)).toBe(true);
  });
});

describe("skein chat", () => {
  it("creates a session in the current directory with the first message, answers each line, and says how to resume", async () => {
    model.enqueue({ events: openaiText("First answer.") }, { events: openaiText("Second answer.") });
    const r = await runCli(["chat"], env, { input: "hello\n\nsecond line\n", cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const id = /^> new session (\d{8}_\d+) in (.*)$/m.exec(r.stdout);
    expect(id?.[2]).toBe(dir);
    expect(r.stdout).toContain(`in ${dir}\nFirst answer.\n> > Second answer.\n> `);
    expect(r.stdout.endsWith(`resume with: skein chat ${id![1]}\n    or goose: goose session --resume --session-id ${id![1]}\n`)).toBe(true);
    // Off a terminal no waiting indicator gets in the way of the reply.
    expect(r.stdout).not.toContain("waiting for the model");
    const show = await runCli(["session", "show", id![1]!, "--json"], env);
    expect((JSON.parse(show.stdout) as { session: { messageCount: number } }).session.messageCount).toBe(4);
  });

  it("creates no session when left before the first message", async () => {
    const count = async () => (JSON.parse((await runCli(["session", "ls", "--json"], env)).stdout) as { sessions: unknown[] }).sessions.length;
    const before = await count();
    for (const input of ["", "\n\n", "/exit\n"]) {
      const r = await runCli(["chat", "--dir", dir], env, { input });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/new session|resume with/);
    }
    expect(await count()).toBe(before);
  });

  it("resuming shows the session's last exchanges (--history N), read across message pages", async () => {
    const id = await newSession();
    // Each answer ends in a long tail: the eight messages need more than one GetSession page.
    const tail = ` ${"x".repeat(MAX_RESPONSE_BYTES / 4)}`;
    for (const q of ["one", "two", "three", "four"]) {
      model.enqueue({ events: openaiText(`answer ${q}${tail}`) });
      expect((await runCli(["send", id, `question ${q}`], env)).code).toBe(0);
    }
    const shown = JSON.parse((await runCli(["session", "show", id, "--json"], env)).stdout) as { messages: unknown[]; nextMessagePageToken: string };
    expect(shown.messages).toHaveLength(8);
    expect(shown.nextMessagePageToken).toBe("");
    const r = await runCli(["chat", id], env, { input: "" });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(`session ${id} in ${dir} (8 messages)`);
    expect(lines[1]).toBe(`(2 earlier messages: \`skein session show ${id}\` shows all)`);
    expect(lines.slice(2, 8).map((l) => l.replace(/^\[[^\]]+\] /, "").replace(tail, ""))).toEqual([
      "user: question two",
      "assistant: answer two",
      "user: question three",
      "assistant: answer three",
      "user: question four",
      "assistant: answer four",
    ]);
    expect(r.stdout).toContain(`resume with: skein chat ${id}\n`);

    const one = await runCli(["chat", id, "--history", "1"], env, { input: "" });
    expect(one.stdout).toMatch(/\(6 earlier messages[^\n]*\n\[[^\]]+\] user: question four\n\[[^\]]+\] assistant: answer four x+\n/);
    const none = await runCli(["chat", id, "--history", "0"], env, { input: "" });
    expect(none.stdout).not.toContain("question");
  });

  it("Ctrl-C cancels the running reply and keeps the prompt", async () => {
    const id = await newSession();
    model.enqueue({ events: openaiText("Thinking hard", { pieces: 1 }).slice(0, 2), ending: "stall" }, { events: openaiText("After the cancel.") });
    const c = spawnCli(["chat", id], env);
    c.proc.stdin!.write("a long question\n");
    await c.waitFor(/Thinking hard/);
    c.proc.kill("SIGINT");
    await c.waitFor(/\(cancelled\)\n> $/);
    expect(c.stderr()).toContain("cancelling the reply");
    c.proc.stdin!.write("go on\n");
    await c.waitFor(/After the cancel\.\n> $/);
    c.proc.stdin!.end();
    const r = await c.result;
    expect(r.code).toBe(0);

    // The service ended the run as cancelled (CancelReply), not just the client going away.
    const w = spawnCli(["watch", id, "--json"], env);
    await w.waitFor(/FINISH_REASON_STOP/);
    w.proc.kill("SIGINT");
    const finished = (await w.result).stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { finished?: { reason: string } })
      .filter((e) => e.finished)
      .map((e) => e.finished!.reason);
    expect(finished).toEqual(["FINISH_REASON_CANCELLED", "FINISH_REASON_STOP"]);
  });

  it("Ctrl-C at an idle prompt leaves with exit 0", async () => {
    const id = await newSession();
    const c = spawnCli(["chat", id], env);
    await c.waitFor(/> $/);
    c.proc.kill("SIGINT");
    expect((await c.result).code).toBe(0);
  });

  it.skipIf(!haveScript())("on a terminal: a waiting indicator until the first token", async () => {
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    model.enqueue({ events: openaiText("Here it is."), holdAfter: 0, hold });
    const c = spawnCli(["chat", "--dir", dir], env, { terminal: true });
    await c.waitFor(/> $/);
    c.proc.stdin!.write("slow question\r");
    await c.waitFor(/waiting for the model/);
    release();
    // The indicator's line is blanked before the reply is written over it.
    await c.waitFor(/waiting for the model\r +\rHere it is\.\r?\n> $/);
    c.proc.stdin!.write("\x04");
    const r = await c.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/resume with: skein chat \d{8}_\d+\r?\n {4}or goose: goose session --resume --session-id \d{8}_\d+/);
  });

  it.skipIf(!haveScript())("on a terminal: Ctrl-C cancels a reply, clears a typed line, Ctrl-D leaves", async () => {
    model.enqueue({ events: openaiText("Thinking hard", { pieces: 1 }).slice(0, 2), ending: "stall" }, { events: openaiText("After the cancel.") });
    const c = spawnCli(["chat", "--dir", dir], env, { terminal: true });
    await c.waitFor(/> $/);
    c.proc.stdin!.write("a long question\r");
    await c.waitFor(/Thinking hard/);
    c.proc.stdin!.write("\x03");
    await c.waitFor(/\(cancelled\)\r?\n> $/);
    // Ctrl-C with text typed throws the text away and stays.
    c.proc.stdin!.write("never sent\x03");
    await c.waitFor(/never sent\^C\r?\n> $/);
    c.proc.stdin!.write("go on\r");
    await c.waitFor(/After the cancel\.\r?\n> $/);
    c.proc.stdin!.write("\x04");
    const r = await c.result;
    expect(r.code).toBe(0);
    const sent = model.requests.slice(-1)[0]!.messages as { role: string; content: unknown }[];
    expect(sent.filter((m) => m.role === "user").map((m) => m.content)).toEqual(["a long question", "go on"]);
  });
});
