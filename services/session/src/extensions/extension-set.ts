import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from "@skein/runtime";
import type { ExtensionConfig } from "./config.js";
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

  /** Starts an extension; AlreadyExistsError for a taken name, ExtensionStartError when it cannot start. */
  async add(config: ExtensionConfig): Promise<void> {
    if (this.closed) throw new FailedPreconditionError("the session's extensions are shut down");
    if (this.extensions.has(config.name) || this.starting.has(config.name)) {
      throw new AlreadyExistsError(`extension ${config.name} already exists in this session`);
    }
    const ext = new McpExtension(config, this.opts);
    this.starting.set(config.name, ext);
    try {
      await ext.start();
    } catch (err) {
      await ext.close();
      throw err;
    } finally {
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
  async addAll(configs: ExtensionConfig[]): Promise<void> {
    const results = await Promise.allSettled(configs.map((c) => this.add(c)));
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
    const sep = name.indexOf(TOOL_SEPARATOR);
    const ext = sep > 0 ? this.extensions.get(name.slice(0, sep)) : undefined;
    const tool = name.slice(sep + TOOL_SEPARATOR.length);
    if (!ext || !ext.hasTool(tool)) return errorResult(`tool ${name} does not exist`);
    return ext.call(tool, args ?? {}, signal);
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
