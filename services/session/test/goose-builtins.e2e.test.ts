import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, openaiText, openaiToolCalls } from "@skein/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { everythingEntry } from "./extensions/helpers.js";
import { listTools } from "./support/extensions.js";
import { createSession, reply, startHarness, type Harness } from "./support/harness.js";

/** goose's config.yaml as goose writes it: a builtin, a platform extension, a remote one. */
const CONFIG = `GOOSE_PROVIDER: openai
extensions:
  developer:
    bundled: true
    display_name: Developer Tools
    enabled: true
    name: developer
    timeout: 300
    type: builtin
  todo:
    enabled: true
    name: todo
    type: platform
  remote:
    enabled: true
    name: remote
    type: sse
    uri: http://localhost:8080/sse
  memory:
    enabled: false
    name: memory
    type: builtin
`;

let root: string;

/** A config dir holding goose's config.yaml, and a bin dir with a stand-in `goose`. */
async function setUp(withGoose: boolean): Promise<{ configHome: string; bin: string; calls: string }> {
  const base = await mkdtemp(join(root, "case-"));
  const configHome = join(base, "config");
  await mkdir(join(configHome, "goose"), { recursive: true });
  await writeFile(join(configHome, "goose", "config.yaml"), CONFIG);
  const bin = join(base, "bin");
  await mkdir(bin);
  const calls = join(base, "goose-calls");
  if (withGoose) {
    // Like the goose CLI, `goose mcp NAME` serves an MCP server over stdio: here the real server-everything.
    const script = `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\n[ "$1" = mcp ] || exit 64\nexec '${process.execPath}' '${everythingEntry}' stdio\n`;
    await writeFile(join(bin, "goose"), script);
    await chmod(join(bin, "goose"), 0o755);
  }
  return { configHome, bin, calls };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "skein-goose-builtins-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("goose's builtin extensions from its config.yaml", () => {
  // Every harness is closed after its test, also when the test fails.
  const harnesses: Harness[] = [];
  afterEach(async () => {
    await Promise.all(harnesses.splice(0).map((x) => x.close()));
  });
  async function start(env: Record<string, string>): Promise<Harness> {
    const h = await startHarness(env);
    harnesses.push(h);
    return h;
  }

  it("run as `goose mcp NAME` when the goose CLI is on PATH: the session's agent has their tools", async () => {
    const { configHome, bin, calls } = await setUp(true);
    const h = await start({ XDG_CONFIG_HOME: configHome, PATH: `${bin}:${process.env.PATH}` });
    const s = await createSession(h.client);
    const tools = (await listTools(h.client, s.id)).map((t) => t.name);
    expect(tools).toContain("developer__echo");
    expect((await readFile(calls, "utf8")).trim().split("\n")[0]).toBe("mcp developer");

    h.model.enqueue({ events: openaiToolCalls([{ id: "call_1", name: "developer__echo", args: { message: "via goose" } }]) }, { events: openaiText("done") });
    const before = h.model.requests.length;
    await collect(reply(h.client, s.id, "use the developer tools"));
    const toolMsg = (h.model.requests[before + 1]!.messages as Record<string, unknown>[]).find((m) => m.role === "tool");
    expect(toolMsg).toEqual({ role: "tool", tool_call_id: "call_1", content: "Echo: via goose" });

    // What it cannot run is named in one warning each; the disabled builtin is not mentioned.
    const skipped = h.svc.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("goose extension "));
    expect(skipped.map((l) => l.extension)).toEqual(["todo", "remote"]);
  });

  it("without the goose CLI on PATH, each one is skipped with a warning naming it and why", async () => {
    const { configHome, bin } = await setUp(false);
    const h = await start({ XDG_CONFIG_HOME: configHome, PATH: `${bin}:/usr/bin:/bin` });
    const warnings = h.svc.logs.filter((l) => l.level === 40);
    const skipped = warnings.filter((l) => typeof l.msg === "string" && l.msg.startsWith("goose extension "));
    expect(skipped.map((l) => l.msg)).toEqual([
      "goose extension developer skipped: it is built into goose, and the goose CLI is not on PATH to run it as `goose mcp developer`",
      "goose extension todo skipped: a platform extension runs inside goose's own process; skein has no equivalent",
      "goose extension remote skipped: remote (sse) extensions are not supported; skein runs stdio MCP servers",
    ]);
    const s = await createSession(h.client);
    expect(await listTools(h.client, s.id)).toEqual([]);
  });
});
