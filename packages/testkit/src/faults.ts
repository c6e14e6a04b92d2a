import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";

/** Fault injectors still attached, ended with the test worker whatever happens to the test. */
const attached = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of attached) p.kill("SIGKILL");
});

export interface Fault {
  /** Ends the fault; the process it was injected into runs on normally. */
  release(): Promise<void>;
}

/**
 * Makes process `pid` unable to reap its children until released: every
 * wait4() it makes returns 0 ("no child has changed state") without running,
 * as if it had missed their SIGCHLD. Used on a tmux server to reproduce panes
 * that stay zombies. Needs strace and permission to ptrace `pid`.
 */
export async function holdReaping(pid: number): Promise<Fault> {
  const strace = spawn("strace", ["-p", String(pid), "-e", "trace=wait4", "-e", "inject=wait4:retval=0", "-o", "/dev/null"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  attached.add(strace);
  const exited = once(strace, "exit").then(() => attached.delete(strace));
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    strace.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (/attached/.test(stderr)) resolve();
    });
    strace.on("error", reject);
    void exited.then(() => reject(new Error(`strace could not attach to pid ${pid}: ${stderr.trim()}`)));
  });
  return {
    async release() {
      // SIGTERM makes strace detach cleanly; the tracee resumes untouched.
      if (strace.exitCode === null && strace.signalCode === null) strace.kill("SIGTERM");
      await exited;
    },
  };
}

/** The environment a process was started with (/proc/<pid>/environ). */
export function procEnviron(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}
