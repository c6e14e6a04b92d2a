import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ReadBuffer, serializeMessage, STDIO_DEFAULT_MAX_BUFFER_SIZE } from "@modelcontextprotocol/sdk/shared/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { endProcessGroup } from "./end-group.js";
import { StderrTail } from "./stderr-tail.js";

const STDERR_DRAIN_MS = 2_000;
/** The most bytes one message from the server may have (the MCP SDK's bound for stdio, 10 MiB). */
export const MAX_EXTENSION_MESSAGE_BYTES = STDIO_DEFAULT_MAX_BUFFER_SIZE;

export interface GroupStdioOptions {
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  killGraceMs?: number;
  stderrBytes?: number;
  /** Called with the pid once the child is spawned, before any message is sent. */
  onSpawn?: (pid: number) => Promise<void> | void;
  /** Called once the child has exited and its group has been ended (crash or close). */
  onExit?: (pid: number, exit: ExitInfo) => Promise<void> | void;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * An MCP stdio client transport that starts the server in its own process
 * group. The SDK's StdioClientTransport spawns the child without `detached`,
 * so its grandchildren (npx → node, sh -c …) would outlive it and it offers no
 * way to end the group; this one ends the whole group on close and on crash.
 */
export class GroupStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  readonly stderr: StderrTail;
  private child?: ChildProcess;
  private readonly readBuffer = new ReadBuffer({ maxBufferSize: MAX_EXTENSION_MESSAGE_BYTES });
  private tooLarge = false;
  private closing?: Promise<void>;
  private exitInfo?: ExitInfo;
  private exited?: Promise<void>;

  constructor(private readonly opts: GroupStdioOptions) {
    this.stderr = new StderrTail(opts.stderrBytes);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The server sent a message over MAX_EXTENSION_MESSAGE_BYTES, so the transport ended it. */
  get messageTooLarge(): boolean {
    return this.tooLarge;
  }

  /** How the child ended, once it has. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error("GroupStdioTransport already started");
    const child = spawn(this.opts.cmd, this.opts.args, {
      env: { ...getDefaultEnvironment(), ...this.opts.env },
      cwd: this.opts.cwd,
      // detached: the child calls setsid(), so its pid is also its process group id.
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
      shell: false,
    });
    this.child = child;

    const spawned = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    // "exit", not "close": a grandchild holding the pipes open would delay "close" forever.
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        resolve();
      });
    });
    child.on("error", (err) => this.onerror?.(err));
    child.stdin!.on("error", (err) => this.onerror?.(err));
    child.stdout!.on("error", (err) => this.onerror?.(err));
    child.stderr!.on("data", (chunk: Buffer) => this.stderr.push(chunk));
    this.stderrDrained = new Promise<void>((resolve) => child.stderr!.once("close", resolve));
    child.stdout!.on("data", (chunk: Buffer) => this.receive(chunk));

    try {
      await spawned;
    } catch (err) {
      // ENOENT and friends: there is no process and nothing to end.
      this.exitInfo = { code: null, signal: null };
      throw err;
    }
    const pid = child.pid!;
    await this.opts.onSpawn?.(pid);
    void this.exited.then(() => this.afterExit(pid));
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (!stdin || this.exitInfo || !stdin.writable) throw new Error("extension process is not running");
    if (!stdin.write(serializeMessage(message))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off("drain", done);
          stdin.off("close", done);
          resolve();
        };
        stdin.on("drain", done);
        stdin.on("close", done);
      });
    }
  }

  /** Ends the process group (SIGTERM, SIGKILL after the grace period) and waits for the exit. */
  close(): Promise<void> {
    this.closing ??= this.endGroup();
    return this.closing;
  }

  private async endGroup(): Promise<void> {
    const child = this.child;
    if (!child?.pid || !this.exited) return;
    if (!this.exitInfo) await endProcessGroup(child.pid, this.opts.killGraceMs);
    await this.exited;
    await this.afterExit(child.pid);
  }

  private afterExitDone?: Promise<void>;
  private stderrDrained?: Promise<void>;

  // Runs once per child, whether it crashed or was closed: leftover group members
  // (grandchildren) are ended too, then the owner hears about it.
  private afterExit(pid: number): Promise<void> {
    this.afterExitDone ??= (async () => {
      await endProcessGroup(pid, this.opts.killGraceMs);
      // "exit" can come before the last stderr bytes are read; they often say why it died.
      await Promise.race([this.stderrDrained, delay(STDERR_DRAIN_MS, undefined, { ref: false })]);
      this.child?.stdin?.destroy();
      this.child?.stdout?.destroy();
      this.child?.stderr?.destroy();
      this.readBuffer.clear();
      try {
        await this.opts.onExit?.(pid, this.exitInfo!);
      } finally {
        this.onclose?.();
      }
    })();
    return this.afterExitDone;
  }

  private receive(chunk: Buffer): void {
    try {
      this.readBuffer.append(chunk);
    } catch (err) {
      // A line over the bound: whose answer it was is unknowable, so the process is ended
      // (its SIGTERM is ours) and its owner told why.
      this.tooLarge = true;
      this.onerror?.(err as Error);
      void this.close();
      return;
    }
    for (;;) {
      let message: JSONRPCMessage | null;
      try {
        message = this.readBuffer.readMessage();
      } catch (err) {
        this.onerror?.(err as Error);
        continue;
      }
      if (message === null) return;
      this.onmessage?.(message);
    }
  }
}
