import { afterEach, describe, expect, it } from "vitest";
import { McpExtension, ExtensionStartError } from "../../src/extensions/mcp-extension.js";
import type { ExtensionConfig } from "@skein/goose-sessions/goose-format";
import { alive, fixture, text, toolCallWritten } from "./helpers.js";
import { eventually } from "../support/harness.js";

const exts: McpExtension[] = [];
const stray: number[] = [];
function start(cfg: ExtensionConfig, opts: ConstructorParameters<typeof McpExtension>[1] = {}): McpExtension {
  const e = new McpExtension(cfg, { killGraceMs: 300, ...opts });
  exts.push(e);
  return e;
}
const never = () => new AbortController().signal;

afterEach(async () => {
  await Promise.all(exts.splice(0).map((e) => e.close()));
  for (const pid of stray.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
});

describe("McpExtension failure handling (fixture server)", () => {
  it("turns a tool's error result into isError with the tool's text", async () => {
    const e = start(fixture());
    await e.start();
    expect(await e.call("fail", {}, never())).toEqual({
      content: [{ type: "text", text: "fixture failure on purpose" }],
      isError: true,
      error: "fixture failure on purpose",
    });
  });

  it("restarts once after a crash and reports the second crash with the extension's stderr", async () => {
    const e = start(fixture());
    await e.start();
    const first = await e.call("crash", { why: "first" }, never());
    expect(first.error).toMatch(/^extension fixture crashed during fixture__crash: process exited with code 3; last stderr: .*crashing on purpose \(first\)/);
    expect(first.error).toContain("it will be restarted on next use");
    expect(e.status).toBe("crashed");

    expect(await e.call("sleep", { ms: 1 }, never())).toMatchObject({ isError: false });
    expect(e.status).toBe("running");

    const second = await e.call("crash", { why: "second" }, never());
    expect(second.error).toContain("crashing on purpose (second)");
    expect(second.error).toContain("it will not be restarted again");

    const after = await e.call("sleep", { ms: 1 }, never());
    expect(after.isError).toBe(true);
    expect(after.error).toMatch(/^extension fixture crashed again and was not restarted: process exited with code 3; last stderr: .*\(second\)/);
    expect(e.pid).toBeUndefined();
  });

  it("ends the group with SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const e = start(fixture({ env: { FIXTURE_IGNORE_TERM: "1" } }));
    await e.start();
    const leader = e.pid!;
    const grandchild = Number(text(await e.call("spawn-grandchild", {}, never())));
    stray.push(grandchild);
    expect(alive(grandchild)).toBe(true);
    await e.close();
    expect(alive(leader)).toBe(false);
    expect(alive(grandchild)).toBe(false);
  });

  it("ends grandchildren left behind when the extension itself crashes", async () => {
    const e = start(fixture());
    await e.start();
    const grandchild = Number(text(await e.call("spawn-grandchild", {}, never())));
    stray.push(grandchild);
    await e.call("crash", {}, never());
    await eventually(() => !alive(grandchild));
  });

  it("keeps only a bounded tail of stderr", async () => {
    const e = start(fixture(), { stderrBytes: 1024 });
    await e.start();
    await e.call("noise", { n: 5000 }, never());
    const r = await e.call("crash", { why: "after noise" }, never());
    // 10 lines at most, from the end of the 1 KiB tail.
    expect(r.error).toContain("crashing on purpose (after noise)");
    expect(r.error!.length).toBeLessThan(1024 + 300);
    expect(r.error).not.toContain("noise line 0 ");
  });

  it("fails to start with a clear error: missing command, immediate exit, no MCP on stdout", async () => {
    const missing = start({ ...fixture(), name: "missing", cmd: "/nonexistent/mcp-server" });
    await expect(missing.start()).rejects.toThrow("extension missing failed to start: command not found: /nonexistent/mcp-server");

    const noCwd = start({ ...fixture(), name: "nocwd" }, { cwd: "/nonexistent/session-dir" });
    await expect(noCwd.start()).rejects.toThrow("extension nocwd failed to start: working directory /nonexistent/session-dir does not exist");

    const exits = start({ ...fixture(), name: "exits", args: ["-e", "console.error('bad flag --x'); process.exit(2)"] });
    const err = await exits.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtensionStartError);
    expect((err as Error).message).toBe("extension exits failed to start: process exited with code 2; last stderr: bad flag --x");

    const silent = start({ ...fixture(), name: "silent", args: ["-e", "setInterval(()=>{},1000)"] }, { startTimeoutMs: 300 });
    const pending = silent.start();
    await expect(pending).rejects.toThrow(/extension silent failed to start: .*timed out/i);
    expect(silent.pid).toBeUndefined();
  });

  it("answers calls after close() with an error result", async () => {
    const e = start(fixture());
    await e.start();
    const written = toolCallWritten(e);
    const inflight = e.call("sleep", { ms: 5000 }, never());
    await written;
    await e.close();
    expect((await inflight).error).toBe("extension fixture was stopped during fixture__sleep");
    expect((await e.call("sleep", { ms: 1 }, never())).error).toBe("extension fixture is not running");
  });
});
