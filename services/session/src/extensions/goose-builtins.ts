/**
 * goose's built-in extensions (`type: builtin` in its config.yaml) are MCP
 * servers compiled into the goose binary. goose offers them over stdio as
 * `goose mcp NAME`, so with the goose CLI on PATH skein runs them the same way.
 */

/**
 * What `goose mcp NAME` serves (goose's crates/goose-cli/src/cli.rs, McpCommand):
 * autovisualiser, computercontroller, memory and tutorial; and developer in the
 * goose releases that write it as `type: builtin` (newer ones run developer
 * inside their own process and write it as `type: platform`).
 */
export const GOOSE_MCP_SERVERS: ReadonlySet<string> = new Set(["developer", "computercontroller", "memory", "tutorial", "autovisualiser"]);

/** goose's own spelling rule for the name given to `goose mcp`: case and spaces do not matter. */
export function gooseServerName(name: string): string {
  return name.toLowerCase().replace(/ /g, "");
}

export type BuiltinResolution = { readonly cmd: string; readonly args: string[] } | { readonly skipped: string };

/** How to run builtin `name`, or why it cannot run; `goose` is the goose CLI's path if it is on PATH. */
export function resolveBuiltin(name: string, goose: string | undefined): BuiltinResolution {
  const server = gooseServerName(name);
  if (!GOOSE_MCP_SERVERS.has(server)) return { skipped: `\`goose mcp\` does not serve a builtin named ${JSON.stringify(name)}` };
  if (goose === undefined) return { skipped: `it is built into goose, and the goose CLI is not on PATH to run it as \`goose mcp ${server}\`` };
  return { cmd: goose, args: ["mcp", server] };
}
