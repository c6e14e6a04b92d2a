import { existsSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { FailedPreconditionError, type Logger } from "@skein/runtime";
import { textOf, type ExtensionConfig } from "@skein/goose-sessions/goose-format";
import { GroupStdioTransport, MAX_EXTENSION_MESSAGE_BYTES, type ExitInfo } from "./group-stdio-transport.js";
import type { PidRegistry } from "./pid-registry.js";
import { errorResult, type ToolResult, type ToolSpec } from "./tool-source.js";

export const TOOL_SEPARATOR = "__";
export const DEFAULT_START_TIMEOUT_MS = 60_000;
const STDERR_LINES_IN_ERRORS = 10;
// A crashed extension is started again once, on its next use; a second crash is reported.
const MAX_RESTARTS = 1;

export interface McpExtensionOptions {
  /** Working directory of the extension process (the session's working_dir). */
  cwd?: string;
  /** Where started processes are recorded so a later instance can end orphans. */
  registry?: PidRegistry;
  /** SIGTERM → SIGKILL grace when ending the process group (default 2000). */
  killGraceMs?: number;
  /** Spawn + MCP initialize + tools/list must finish within this (default 60000). */
  startTimeoutMs?: number;
  /** Bytes of stderr kept for error messages (default 8 KiB). */
  stderrBytes?: number;
  log?: Pick<Logger, "info" | "warn">;
}

/** An extension that could not be started (bad command, exits at once, no MCP handshake). */
export class ExtensionStartError extends FailedPreconditionError {}

type State = "new" | "running" | "crashed" | "failed" | "closed";

interface Connection {
  client: Client;
  transport: GroupStdioTransport;
}

/**
 * One stdio MCP server, started in its own process group through the SDK's
 * Client. Calls never throw: failures, timeouts, cancellation and crashes come
 * back as error results. A crashed server is started again on next use, once.
 */
export class McpExtension {
  private state: State = "new";
  private conn?: Connection;
  private specs: ToolSpec[] = [];
  private toolNames = new Set<string>();
  private restarts = 0;
  /** The last exit was ours, over a too large message: the next start does not count as a restart. */
  private endedForSize = false;
  private lastCrash = "";
  private restarting?: Promise<void>;
  private closing?: Promise<void>;

  constructor(
    readonly config: ExtensionConfig,
    private readonly opts: McpExtensionOptions = {},
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** Pid (= process group id) of the running server process. */
  get pid(): number | undefined {
    return this.state === "running" ? this.conn?.transport.pid : undefined;
  }

  get status(): State {
    return this.state;
  }

  /** Starts the server and reads its tools; throws ExtensionStartError when it cannot. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`extension ${this.name} already started`);
    await this.connect();
  }

  /** Tools offered to the model, named `<extension>__<tool>`. */
  tools(): ToolSpec[] {
    return this.specs;
  }

  hasTool(tool: string): boolean {
    return this.toolNames.has(tool);
  }

  /** Calls `tool` (the name without prefix) with the extension's timeout. */
  async call(tool: string, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult> {
    const full = `${this.name}${TOOL_SEPARATOR}${tool}`;
    if (signal.aborted) return errorResult(`tool call ${full} was cancelled`);
    if (this.state === "crashed") {
      try {
        await this.restart();
      } catch (err) {
        return errorResult((err as Error).message);
      }
    }
    if (this.state === "failed") return errorResult(this.failedMessage());
    if (this.state !== "running" || !this.conn) return errorResult(`extension ${this.name} is not running`);

    const { client, transport } = this.conn;
    const timeoutMs = this.config.timeoutSeconds * 1000;
    try {
      const res = await client.callTool({ name: tool, arguments: args }, undefined, { signal, timeout: timeoutMs });
      const content = Array.isArray(res.content) ? (res.content as Array<Record<string, unknown>>) : [];
      if (res.isError === true) return { content, isError: true, error: textOf(content, "\n") || `tool ${full} failed` };
      return { content, isError: false };
    } catch (err) {
      if (signal.aborted) return errorResult(`tool call ${full} was cancelled`);
      if (this.status === "closed") return errorResult(`extension ${this.name} was stopped during ${full}`);
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        return errorResult(`tool ${full} timed out after ${this.config.timeoutSeconds} s`);
      }
      if (transport.exit || (err instanceof McpError && err.code === ErrorCode.ConnectionClosed)) {
        // Waits until the transport's exit handling (group ended, state updated) is done.
        await transport.close().catch(() => {});
        if (transport.messageTooLarge) return errorResult(`tool ${full} failed: ${tooLargeMessage(this.name)}`);
        const next = this.status === "failed" ? "it will not be restarted again" : "it will be restarted on next use";
        return errorResult(`extension ${this.name} crashed during ${full}: ${this.lastCrash}; ${next}`);
      }
      return errorResult(`tool ${full} failed: ${(err as Error).message}`);
    }
  }

  /** Ends the process group (SIGTERM, then SIGKILL after the grace period) and waits for it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.restarting?.catch(() => {});
      this.state = "closed";
      const conn = this.conn;
      if (conn) await closeConnection(conn);
    })();
    return this.closing;
  }

  private restart(): Promise<void> {
    this.restarting ??= (async () => {
      if (this.endedForSize) this.endedForSize = false;
      else this.restarts++;
      this.opts.log?.warn({ extension: this.name, crash: this.lastCrash }, "restarting crashed extension");
      try {
        await this.connect();
      } catch (err) {
        if (this.state !== "closed") this.state = "failed";
        this.lastCrash = (err as Error).message;
        throw err;
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }

  private async connect(): Promise<void> {
    const transport = new GroupStdioTransport({
      cmd: this.config.cmd,
      args: this.config.args,
      env: this.config.env,
      cwd: this.opts.cwd,
      killGraceMs: this.opts.killGraceMs,
      stderrBytes: this.opts.stderrBytes,
      onSpawn: (pid) => this.opts.registry?.add(pid, this.name),
      onExit: (pid, exit) => this.exited(transport, pid, exit),
    });
    const client = new Client({ name: "skein", version: "0.1.0" }, { capabilities: {} });
    // Errors on the wire (a non-JSON line on stdout) are not fatal; the SDK reports them here.
    client.onerror = (err) => this.opts.log?.warn({ extension: this.name, err: err.message }, "extension protocol error");
    const conn = { client, transport };
    this.conn = conn;
    const timeout = this.opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    try {
      await client.connect(transport, { timeout });
      const specs: ToolSpec[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? undefined : { cursor }, { timeout });
        for (const t of page.tools) {
          specs.push({
            name: `${this.name}${TOOL_SEPARATOR}${t.name}`,
            description: t.description ?? "",
            inputSchema: t.inputSchema as Record<string, unknown>,
            extension: this.name,
            ...(t.annotations?.readOnlyHint === true ? { readOnly: true } : {}),
          });
        }
        cursor = page.nextCursor;
      } while (cursor);
      if (this.state === "closed") throw new Error("extension was closed while starting");
      this.specs = specs;
      this.toolNames = new Set(specs.map((s) => s.name.slice(this.name.length + TOOL_SEPARATOR.length)));
      this.state = "running";
    } catch (err) {
      // Described before closing: once we end the group, the exit is ours, not the cause.
      const reason = startFailure(err, transport, this.opts.cwd);
      await closeConnection(conn);
      throw new ExtensionStartError(`extension ${this.name} failed to start: ${reason}`);
    }
  }

  // The process is gone (crash or close) and its group ended.
  // State first: once the registry no longer counts the process, callers see "crashed".
  private async exited(transport: GroupStdioTransport, pid: number, exit: ExitInfo): Promise<void> {
    if (this.conn?.transport === transport && this.state === "running" && transport.messageTooLarge) {
      // Not a crash: the server is fine, one answer was too large. Started again on next use, always.
      this.lastCrash = tooLargeMessage(this.name);
      this.endedForSize = true;
      this.state = "crashed";
      this.opts.log?.warn({ extension: this.name, pid, limitBytes: MAX_EXTENSION_MESSAGE_BYTES }, "extension sent a message over the size limit; ended it");
    } else if (this.conn?.transport === transport && this.state === "running") {
      this.lastCrash = describeExit(exit, transport);
      this.state = this.restarts < MAX_RESTARTS ? "crashed" : "failed";
      this.opts.log?.warn({ extension: this.name, pid, ...exit }, "extension process exited unexpectedly");
    }
    await this.opts.registry?.remove(pid);
  }

  private failedMessage(): string {
    return `extension ${this.name} crashed again and was not restarted: ${this.lastCrash}`;
  }
}

async function closeConnection(conn: Connection): Promise<void> {
  // client.close() closes the transport (ends the group) and rejects pending requests.
  await conn.client.close().catch(() => {});
  await conn.transport.close().catch(() => {});
}

function tooLargeMessage(extension: string): string {
  return (
    `result too large: extension ${extension} sent a message over the ${MAX_EXTENSION_MESSAGE_BYTES}-byte limit of one MCP message ` +
    `(10 MiB); skein stopped the extension, since the rest of its output cannot be read reliably, and starts it again on next use`
  );
}

function describeExit(exit: ExitInfo, transport: GroupStdioTransport): string {
  const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return `process ${how}${stderrSuffix(transport)}`;
}

function startFailure(err: unknown, transport: GroupStdioTransport, cwd: string | undefined): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "ENOENT" && e.syscall?.startsWith("spawn")) {
    // Node reports a missing cwd as the command's ENOENT.
    if (cwd !== undefined && !existsSync(cwd)) return `working directory ${cwd} does not exist`;
    return `command not found: ${e.path ?? "?"}`;
  }
  if (transport.exit && (transport.exit.code !== null || transport.exit.signal !== null)) return describeExit(transport.exit, transport);
  return `${(err as Error)?.message ?? String(err)}${stderrSuffix(transport)}`;
}

function stderrSuffix(transport: GroupStdioTransport): string {
  const lines = transport.stderr.lastLines(STDERR_LINES_IN_ERRORS);
  return lines.length ? `; last stderr: ${lines.join(" | ")}` : "";
}
