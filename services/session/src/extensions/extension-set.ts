import { AlreadyExistsError, CancelledError, FailedPreconditionError, NotFoundError } from "@skein/runtime";
import type { ExtensionConfig } from "@skein/goose-sessions/goose-format";
import { McpExtension, TOOL_SEPARATOR, type McpExtensionOptions } from "./mcp-extension.js";
import { errorResult, type ToolResult, type ToolSource, type ToolSpec } from "./tool-source.js";

export type ExtensionSetOptions = McpExtensionOptions;

/**
 * The extensions of one session agent, seen by the tool loop as one ToolSource.
 * Calls of one turn may run concurrently (the MCP client multiplexes requests).
 * close() ends every process; the set is unusable afterwards.
 */
export class ExtensionSet implements ToolSource {
  private readonly extensions = new Map<string, McpExtension>();
  // Names being started: reserved so a concurrent add of the same name is refused.
  private readonly starting = new Map<string, McpExtension>();
  private closed = false;
  private closing?: Promise<void>;

  constructor(private readonly opts: ExtensionSetOptions = {}) {}

  /**
   * Starts an extension; AlreadyExistsError for a taken name, ExtensionStartError
   * when it cannot start, CancelledError when `signal` aborts first (its
   * processes are ended then, not left to finish starting).
   */
  async add(config: ExtensionConfig, signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new FailedPreconditionError("the session's extensions are shut down");
    signal?.throwIfAborted();
    if (this.extensions.has(config.name) || this.starting.has(config.name)) {
      throw new AlreadyExistsError(`extension ${config.name} already exists in this session`);
    }
    const ext = new McpExtension(config, this.opts);
    this.starting.set(config.name, ext);
    const stop = () => void ext.close();
    signal?.addEventListener("abort", stop, { once: true });
    try {
      await ext.start();
      signal?.throwIfAborted();
    } catch (err) {
      await ext.close();
      if (signal?.aborted) throw new CancelledError(`starting extension ${config.name} was cancelled`);
      throw err;
    } finally {
      signal?.removeEventListener("abort", stop);
      this.starting.delete(config.name);
    }
    if (this.closed) {
      // close() ran while this one was starting.
      await ext.close();
      throw new FailedPreconditionError("the session's extensions are shut down");
    }
    this.extensions.set(config.name, ext);
  }

  /** Starts several at once; if any fails, the others of this call are ended and the first error thrown. */
  async addAll(configs: ExtensionConfig[], signal?: AbortSignal): Promise<void> {
    const results = await Promise.allSettled(configs.map((c) => this.add(c, signal)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (!failed) return;
    await Promise.all(configs.filter((_, i) => results[i]!.status === "fulfilled").map((c) => this.remove(c.name)));
    throw failed.reason;
  }

  /** Ends an extension's processes; its tools disappear at once. */
  async remove(name: string): Promise<void> {
    const ext = this.extensions.get(name);
    if (!ext) throw new NotFoundError(`extension ${name} is not in this session`);
    this.extensions.delete(name);
    await ext.close();
  }

  names(): string[] {
    return [...this.extensions.keys()];
  }

  /** Running extension processes of this set. */
  get processCount(): number {
    let n = 0;
    for (const e of this.extensions.values()) if (e.pid !== undefined) n++;
    return n;
  }

  list(): ToolSpec[] {
    return [...this.extensions.values()].flatMap((e) => e.tools());
  }

  async call(name: string, args: Record<string, unknown>, signal: AbortSignal): Promise<ToolResult> {
    const found = this.resolve(name);
    if (!found) return errorResult(`tool ${name} does not exist`);
    return found.ext.call(found.tool, args ?? {}, signal);
  }

  /**
   * `extension__tool` → its extension and tool. Names hold no `__` and do not
   * end in `_`, so the first `__` separates; tool names may contain `__`.
   */
  private resolve(name: string): { ext: McpExtension; tool: string } | undefined {
    const sep = name.indexOf(TOOL_SEPARATOR);
    if (sep <= 0) return undefined;
    const ext = this.extensions.get(name.slice(0, sep));
    const tool = name.slice(sep + TOOL_SEPARATOR.length);
    return ext?.hasTool(tool) ? { ext, tool } : undefined;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      const all = [...this.extensions.values(), ...this.starting.values()];
      this.extensions.clear();
      await Promise.all(all.map((e) => e.close()));
    })();
    return this.closing;
  }
}
