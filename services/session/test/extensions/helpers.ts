import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { liveStartTicks } from "@skein/host";
import { repoRoot } from "@skein/testkit";
import type { ExtensionConfig } from "@skein/goose-sessions/goose-format";
import type { GroupStdioTransport } from "../../src/extensions/group-stdio-transport.js";
import type { McpExtension } from "../../src/extensions/mcp-extension.js";
import type { ToolResult } from "../../src/extensions/tool-source.js";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** The real third-party server, run as the npm bin would run it: `mcp-server-everything stdio`. */
export const everythingEntry = join(dirname(require.resolve("@modelcontextprotocol/server-everything/package.json")), "dist/index.js");
export const filesystemEntry = join(dirname(require.resolve("@modelcontextprotocol/server-filesystem/package.json")), "dist/index.js");
export const fixtureEntry = join(here, "fixtures/fixture-server.mjs");
/** A server whose `append` tool writes to $APPROVAL_LOG (no annotations) and `peek` is readOnlyHint. */
export const approvalEntry = join(here, "fixtures/approval-server.mjs");

export function everything(over: Partial<ExtensionConfig> = {}): ExtensionConfig {
  return { name: "everything", cmd: process.execPath, args: [everythingEntry, "stdio"], env: {}, timeoutSeconds: 300, ...over };
}

export function fixture(over: Partial<ExtensionConfig> = {}): ExtensionConfig {
  return { name: "fixture", cmd: process.execPath, args: [fixtureEntry], env: {}, timeoutSeconds: 300, ...over };
}

/** Runs the real server as a grandchild (`sh` is the group leader), as `npx …` would. */
export function everythingUnderShell(name = "shelled"): ExtensionConfig {
  return { name, cmd: "/bin/sh", args: ["-c", `"${process.execPath}" "${everythingEntry}" stdio; exit $?`], env: {}, timeoutSeconds: 300 };
}

export const alive = (pid: number): boolean => liveStartTicks(pid) !== undefined;

export function text(r: ToolResult): string {
  return r.content.map((c) => (c.type === "text" ? String(c.text) : `[${String(c.type)}]`)).join("\n");
}

/**
 * Resolves once the extension has written a tools/call request to its server's
 * stdin: a call started after this is in flight, not refused before it left.
 */
export function toolCallWritten(ext: McpExtension): Promise<void> {
  const transport = (ext as unknown as { conn: { transport: GroupStdioTransport } }).conn.transport;
  const send = transport.send.bind(transport);
  return new Promise((resolve) => {
    transport.send = async (message) => {
      await send(message);
      if ("method" in message && message.method === "tools/call") resolve();
    };
  });
}

/**
 * Compiles src/extensions to plain JS so a separate node process (a stand-in
 * for a previous service instance) can run it. The output sits under the repo's
 * node_modules so `@skein/runtime` and the SDK resolve; the caller removes it.
 */
export async function compileExtensions(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const cacheDir = join(repoRoot, "node_modules/.cache");
  await mkdir(cacheDir, { recursive: true });
  const dir = await mkdtemp(join(cacheDir, "skein-ext-test-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const tsconfig = {
      extends: join(repoRoot, "tsconfig.base.json"),
      compilerOptions: {
        // src, not src/extensions: the extension modules import a few modules beside them (store helpers, goose-yaml).
        rootDir: join(repoRoot, "services/session/src"),
        outDir: dir,
        composite: false,
        incremental: false,
        declaration: false,
        declarationMap: false,
        sourceMap: false,
      },
      include: [join(repoRoot, "services/session/src/extensions/*.ts")],
    };
    await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig));
    await promisify(execFile)(join(repoRoot, "node_modules/.bin/tsc"), ["-p", join(dir, "tsconfig.json")], { cwd: repoRoot });
    return { dir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
