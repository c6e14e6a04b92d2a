import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";

/** A bench process (bench/dist/procs/<name>.js) the parent drives by command. */
export interface BenchChild {
  readonly pid: number;
  call<T = unknown>(cmd: string, args?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/** Forks bench/dist/procs/<name>.js without the parent's node flags and waits for it to be ready. */
export async function forkChild(name: string, env: Record<string, string> = {}): Promise<BenchChild> {
  const proc: ChildProcess = fork(new URL(`./procs/${name}.js`, import.meta.url), [], {
    execArgv: [],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  const exited = once(proc, "exit");
  const died = exited.then(([code, signal]) => new Error(`bench process ${name} exited (code ${code}, signal ${signal})`));
  void died.then((e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  const ready = new Promise<void>((resolve) => {
    proc.on("message", (m: { ready?: true; id?: number; result?: unknown; error?: string }) => {
      if (m.ready) return resolve();
      const p = pending.get(m.id!);
      if (!p) return;
      pending.delete(m.id!);
      if (m.error !== undefined) p.reject(new Error(`${name}: ${m.error}`));
      else p.resolve(m.result);
    });
  });
  await Promise.race([ready, died.then((e) => Promise.reject(e))]);
  return {
    pid: proc.pid!,
    call: <T>(cmd: string, args?: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args });
      }),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.disconnect();
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
