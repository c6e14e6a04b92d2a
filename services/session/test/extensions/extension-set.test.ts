import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ExtensionSet } from "../../src/extensions/extension-set.js";
import { ExtensionStartError, type McpExtension } from "../../src/extensions/mcp-extension.js";
import { groupMembers } from "@skein/host";
import type { ToolResult } from "../../src/extensions/tool-source.js";
import { alive, everything, everythingUnderShell, filesystemEntry, fixture, text, toolCallWritten } from "./helpers.js";
import { eventually } from "../support/harness.js";

const sets: ExtensionSet[] = [];
const dirs: string[] = [];
function newSet(opts: ConstructorParameters<typeof ExtensionSet>[0] = {}): ExtensionSet {
  const s = new ExtensionSet({ killGraceMs: 500, ...opts });
  sets.push(s);
  return s;
}
const never = () => new AbortController().signal;
const extensionOf = (set: ExtensionSet, name: string) => (set as unknown as { extensions: Map<string, McpExtension> }).extensions.get(name)!;

afterEach(async () => {
  await Promise.all(sets.splice(0).map((s) => s.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe("ExtensionSet with @modelcontextprotocol/server-everything", () => {
  it("lists the server's tools prefixed with the extension name, with schemas", async () => {
    const set = newSet();
    await set.add(everything());
    const tools = set.list();
    const echo = tools.find((t) => t.name === "everything__echo");
    expect(echo).toMatchObject({ extension: "everything", description: "Echoes back the input string" });
    expect(echo!.inputSchema).toMatchObject({ type: "object", properties: { message: { type: "string" } } });
    expect(tools.map((t) => t.name)).toContain("everything__get-sum");
    expect(tools.every((t) => t.name.startsWith("everything__"))).toBe(true);
    expect(set.names()).toEqual(["everything"]);
    expect(set.processCount).toBe(1);
  });

  it("calls tools and returns MCP content items", async () => {
    const set = newSet();
    await set.add(everything());
    const echo = await set.call("everything__echo", { message: "hello skein" }, never());
    expect(echo).toEqual({ content: [{ type: "text", text: "Echo: hello skein" }], isError: false });
    const sum = await set.call("everything__get-sum", { a: 2, b: 40 }, never());
    expect(sum.isError).toBe(false);
    expect(text(sum)).toContain("42");
  });

  it("runs the tool calls of one turn concurrently", async () => {
    const set = newSet();
    await set.add(everything());
    // If calls were serialised, the echo sent after three 1 s operations would answer last.
    const order: string[] = [];
    const track = (label: string, p: Promise<ToolResult>) => p.then((r) => (order.push(label), r));
    const slow = [1, 2, 3].map(() => track("slow", set.call("everything__trigger-long-running-operation", { duration: 1, steps: 1 }, never())));
    const echo = track("echo", set.call("everything__echo", { message: "x" }, never()));
    const results = await Promise.all([...slow, echo]);
    expect(results.every((r) => !r.isError)).toBe(true);
    expect(order).toEqual(["echo", "slow", "slow", "slow"]);
    expect(text(results[0]!)).toContain("Long running operation completed");
  });

  it("turns invalid arguments into an error result", async () => {
    const set = newSet();
    await set.add(everything());
    const r = await set.call("everything__get-sum", { a: "not a number" }, never());
    expect(r.isError).toBe(true);
    expect(r.error).toBeTruthy();
  });

  it("answers an unknown tool or extension with an error result", async () => {
    const set = newSet();
    await set.add(everything());
    for (const name of ["everything__nope", "other__echo", "echo", "__echo"]) {
      expect(await set.call(name, {}, never())).toEqual({
        content: [{ type: "text", text: `tool ${name} does not exist` }],
        isError: true,
        error: `tool ${name} does not exist`,
      });
    }
  });

  it("ends a call that exceeds the extension's timeout with an error result; the extension stays usable", async () => {
    const set = newSet();
    await set.add(everything({ timeoutSeconds: 1 }));
    const r = await set.call("everything__trigger-long-running-operation", { duration: 5, steps: 5 }, never());
    expect(r).toMatchObject({ isError: true, error: "tool everything__trigger-long-running-operation timed out after 1 s" });
    expect(text(await set.call("everything__echo", { message: "still here" }, never()))).toBe("Echo: still here");
  });

  it("returns a cancelled error result when the caller aborts", async () => {
    const set = newSet();
    await set.add(everything());
    const ac = new AbortController();
    const written = toolCallWritten(extensionOf(set, "everything"));
    const pending = set.call("everything__trigger-long-running-operation", { duration: 5, steps: 5 }, ac.signal);
    await written;
    ac.abort();
    expect(await pending).toMatchObject({ isError: true, error: "tool call everything__trigger-long-running-operation was cancelled" });
  });

  it("reports a crash mid-call as an error result, then restarts the extension on next use", async () => {
    const set = newSet();
    await set.add(everything());
    const ext = extensionOf(set, "everything");
    const firstPid = ext.pid!;
    const written = toolCallWritten(ext);
    const pending = set.call("everything__trigger-long-running-operation", { duration: 10, steps: 10 }, never());
    await written;
    process.kill(firstPid, "SIGKILL");
    const r = await pending;
    expect(r.isError).toBe(true);
    expect(r.error).toMatch(/^extension everything crashed during everything__trigger-long-running-operation: process killed by SIGKILL/);
    expect(r.error).toContain("it will be restarted on next use");
    expect(set.processCount).toBe(0);

    expect(text(await set.call("everything__echo", { message: "back" }, never()))).toBe("Echo: back");
    expect(ext.pid).toBeDefined();
    expect(ext.pid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
  });

  it("close() ends every process, grandchildren included", async () => {
    const set = newSet();
    await set.add(everything());
    await set.add(everythingUnderShell());
    const exts = (set as unknown as { extensions: Map<string, { pid?: number }> }).extensions;
    const leaders = [...exts.values()].map((e) => e.pid!);
    const members = leaders.flatMap((pid) => groupMembers(pid));
    // The shelled one has sh and node in its group.
    expect(groupMembers(exts.get("shelled")!.pid!).length).toBe(2);
    expect(text(await set.call("shelled__echo", { message: "via sh" }, never()))).toBe("Echo: via sh");
    await set.close();
    for (const pid of members) expect(alive(pid)).toBe(false);
    expect(set.list()).toEqual([]);
    expect(set.processCount).toBe(0);
  });

  it("remove() ends one extension and drops its tools; unknown names are NOT_FOUND", async () => {
    const set = newSet();
    await set.add(everything());
    await set.add(everything({ name: "second" }));
    const pid = (set as unknown as { extensions: Map<string, { pid?: number }> }).extensions.get("second")!.pid!;
    await set.remove("second");
    expect(alive(pid)).toBe(false);
    expect(set.list().some((t) => t.extension === "second")).toBe(false);
    expect((await set.call("second__echo", { message: "x" }, never())).error).toBe("tool second__echo does not exist");
    await expect(set.remove("second")).rejects.toThrow("extension second is not in this session");
    await expect(set.add(everything())).rejects.toThrow("extension everything already exists in this session");
  });

  it("works with @modelcontextprotocol/server-filesystem, in the session's working directory", async () => {
    const dir = await mkdtemp(join(tmpdir(), "skein-ext-fs-"));
    dirs.push(dir);
    const set = newSet({ cwd: dir });
    await set.add({ name: "fs", cmd: process.execPath, args: [filesystemEntry, dir], env: {}, timeoutSeconds: 30 });
    expect(set.list().map((t) => t.name)).toContain("fs__write_file");
    const w = await set.call("fs__write_file", { path: join(dir, "note.txt"), content: "written by a tool" }, never());
    expect(w.isError).toBe(false);
    const r = await set.call("fs__read_text_file", { path: join(dir, "note.txt") }, never());
    expect(text(r)).toContain("written by a tool");
    const outside = await set.call("fs__read_text_file", { path: "/etc/hostname" }, never());
    expect(outside.isError).toBe(true);
    expect(outside.error).toMatch(/denied|outside/i);
  });

  it("addAll() starts several; a failing one ends the others and throws", async () => {
    const set = newSet();
    const bad = { name: "bad", cmd: "/nonexistent/skein-mcp", args: [], env: {}, timeoutSeconds: 10 };
    await expect(set.addAll([everything(), bad])).rejects.toBeInstanceOf(ExtensionStartError);
    expect(set.names()).toEqual([]);
    expect(set.processCount).toBe(0);
    await set.addAll([everything(), fixture()]);
    expect(set.names().sort()).toEqual(["everything", "fixture"]);
    await eventually(() => set.processCount === 2);
  });
});
