import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot, startService } from "@skein/testkit";
import { afterEach, expect, it } from "vitest";

/** What the README's quick start exports, plus a tmux client's and goose's own settings. */
const HOSTILE = {
  SKEIN_PROVIDER: "openai",
  SKEIN_MODEL: "gpt-4o-mini",
  SKEIN_SESSION_STORE: "jsonl",
  OPENAI_BASE_URL: "http://127.0.0.1:9/v1",
  OPENAI_API_KEY: "sk-hostile",
  ANTHROPIC_API_KEY: "hostile",
  GOOSE_PROVIDER: "anthropic",
  TMUX: "/tmp/tmux-0/default,1,0",
  TMUX_PANE: "%1",
};

const set: string[] = [];
afterEach(() => {
  for (const k of set.splice(0)) delete process.env[k];
});

it("a service a test starts sees none of the caller's SKEIN_/provider/goose/tmux variables, only what the test sets", async () => {
  // Set after the worker's own scrub, as if a test or a library had put them back.
  for (const [k, v] of Object.entries(HOSTILE)) (set.push(k), (process.env[k] = v));
  process.env.SKEIN_TEST_MARK = "x";
  set.push("SKEIN_TEST_MARK");
  const svc = await startService("session", { SKEIN_MAX_MESSAGE_CHARS: "50" });
  try {
    const environ = readFileSync(`/proc/${svc.proc.pid}/environ`, "utf8").split("\0");
    const names = environ.map((e) => e.slice(0, e.indexOf("=")));
    for (const k of [...Object.keys(HOSTILE), "SKEIN_TEST_MARK"]) expect(names).not.toContain(k);
    expect(environ).toContain("SKEIN_MAX_MESSAGE_CHARS=50");
    expect(names).toContain("PATH");
  } finally {
    await svc.stop();
  }
});

it("a service test passes with the quick start's variables exported in the caller's shell", { timeout: 120_000 }, () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("VITEST")) env[k] = v;
  const r = spawnSync(
    process.execPath,
    [join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", "services/session/test/bad-input.e2e.test.ts", "-t", "no provider configured"],
    { cwd: repoRoot, env: { ...env, ...HOSTILE, NO_COLOR: "1" }, encoding: "utf8" },
  );
  const output = `${r.stdout}${r.stderr}`;
  expect(r.status, output).toBe(0);
  expect(output).toMatch(/1 passed/);
});
