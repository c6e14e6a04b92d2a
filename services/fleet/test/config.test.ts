import { ConfigError } from "@skein/runtime";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";

const base = { HOME: "/home/u", SKEIN_HEARTBEAT_DIR: "/run/hb" };

describe("fleet config", () => {
  it("gives tmux only the allow-listed part of the service's environment", () => {
    const c = loadConfig({ ...base, PATH: "/bin", LANG: "C.UTF-8", LC_ALL: "C", TZ: "UTC", SKEIN_AUTH_TOKEN: "t", OPENAI_API_KEY: "k", TMUX: "/tmp/x,1,0", TMUX_TMPDIR: "/run/t" });
    expect(c.tmuxEnv).toEqual({ HOME: "/home/u", PATH: "/bin", LANG: "C.UTF-8", LC_ALL: "C", TZ: "UTC", TMUX_TMPDIR: "/run/t" });
  });

  it("reads SKEIN_AGENT_ENV_PASSTHROUGH as NAME and PREFIX* entries; PATH always passes", () => {
    const c = loadConfig({ ...base, PATH: "/bin", SKEIN_AGENT_ENV_PASSTHROUGH: " FOO , MY_* ", FOO: "1", MY_X: "2", LANG: "C" });
    expect(c.tmuxEnv).toEqual({ PATH: "/bin", FOO: "1", MY_X: "2" });
    expect(() => loadConfig({ ...base, SKEIN_AGENT_ENV_PASSTHROUGH: "A,B-C" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SKEIN_AGENT_ENV_PASSTHROUGH: "*" })).toThrow(/SKEIN_AGENT_ENV_PASSTHROUGH/);
  });

  it("confines heartbeat dirs to SKEIN_HEARTBEAT_DIR and SKEIN_HEARTBEAT_ROOTS", () => {
    expect(loadConfig(base).heartbeatRoots).toEqual(["/run/hb"]);
    expect(loadConfig({ ...base, SKEIN_HEARTBEAT_ROOTS: "/srv/a:/srv/b" }).heartbeatRoots).toEqual(["/run/hb", "/srv/a", "/srv/b"]);
    expect(() => loadConfig({ ...base, SKEIN_HEARTBEAT_ROOTS: "rel" })).toThrow(/SKEIN_HEARTBEAT_ROOTS/);
  });
});
