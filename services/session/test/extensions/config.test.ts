import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, InvalidArgumentError } from "@skein/runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gooseKey, validateExtensionConfig, validateExtensionConfigs } from "@skein/goose-sessions/goose-format";
import { loadServiceExtensions, parseGooseExtensions, parseSkeinExtensions } from "../../src/extensions/service-config.js";

const ok = { name: "dev-tools_1", cmd: "npx", args: ["-y", "x"], env: { API_TOKEN: "t" }, timeout_seconds: 0 };

function invalid(raw: unknown, field = "extensions[0]"): string {
  try {
    validateExtensionConfig(raw as never, field);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error("expected InvalidArgumentError");
}

describe("validateExtensionConfig", () => {
  it("accepts a valid config; timeout 0 means the 300 s default; camelCase from the proto too", () => {
    expect(validateExtensionConfig(ok, "e")).toEqual({ name: "dev-tools_1", cmd: "npx", args: ["-y", "x"], env: { API_TOKEN: "t" }, timeoutSeconds: 300 });
    expect(validateExtensionConfig({ name: "a", cmd: "c", timeoutSeconds: 3600 }, "e")).toEqual({ name: "a", cmd: "c", args: [], env: {}, timeoutSeconds: 3600 });
  });

  it("names the field and the rule", () => {
    expect(invalid({ ...ok, name: "" })).toBe("extensions[0].name: must be 1-64 characters of letters, digits, '_' or '-'");
    expect(invalid({ ...ok, name: "a".repeat(65) })).toMatch(/^extensions\[0\]\.name: /);
    expect(invalid({ ...ok, name: "has space" })).toMatch(/^extensions\[0\]\.name: /);
    expect(invalid({ ...ok, name: "../x" })).toMatch(/^extensions\[0\]\.name: /);
    expect(invalid({ ...ok, name: "a__b" })).toBe("extensions[0].name: must not contain '__' (it separates extension and tool names)");
    expect(invalid({ ...ok, cmd: " " })).toBe("extensions[0].cmd: must be a non-empty command");
    expect(invalid({ ...ok, cmd: undefined })).toBe("extensions[0].cmd: must be a non-empty command");
    expect(invalid({ ...ok, args: "x" })).toBe("extensions[0].args: must be a list of strings");
    expect(invalid({ ...ok, args: ["a", 1] })).toBe("extensions[0].args[1]: must be a string");
    expect(invalid({ ...ok, env: { "1BAD": "x" } })).toBe('extensions[0].env: key "1BAD" must match [A-Za-z_][A-Za-z0-9_]*');
    expect(invalid({ ...ok, env: { "A-B": "x" } })).toMatch(/^extensions\[0\]\.env: key "A-B"/);
    expect(invalid({ ...ok, env: { A: 1 } })).toBe("extensions[0].env.A: must be a string");
    expect(invalid({ ...ok, timeout_seconds: 3601 })).toBe("extensions[0].timeout_seconds: at most 3600");
    expect(invalid({ ...ok, timeout_seconds: -1 })).toBe("extensions[0].timeout_seconds: must be a whole number of seconds >= 0");
    expect(invalid({ ...ok, timeout_seconds: 1.5 })).toMatch(/^extensions\[0\]\.timeout_seconds: /);
    expect(invalid(null)).toBe("extensions[0]: must be an object");
  });

  it("refuses duplicate names in one list", () => {
    expect(() => validateExtensionConfigs([ok, ok])).toThrow('extensions[1].name: duplicate extension name "dev-tools_1"');
    expect(validateExtensionConfigs(undefined)).toEqual([]);
  });
});

describe("SKEIN_EXTENSIONS", () => {
  it("parses a JSON array", () => {
    const got = parseSkeinExtensions(JSON.stringify([{ name: "fs", cmd: "mcp-server-filesystem", args: ["/tmp"], env: {}, timeout_seconds: 30 }]));
    expect(got).toEqual([{ name: "fs", cmd: "mcp-server-filesystem", args: ["/tmp"], env: {}, timeoutSeconds: 30 }]);
  });

  it("refuses bad values with a ConfigError naming the variable", () => {
    for (const [raw, msg] of [
      ["{not json", /^SKEIN_EXTENSIONS is not valid JSON: /],
      ['{"name":"x"}', /^SKEIN_EXTENSIONS must be a JSON array/],
      ['[{"name":"x"}]', /^SKEIN_EXTENSIONS: \[0\]\.cmd: must be a non-empty command$/],
      ['[{"name":"x","cmd":"a"},{"name":"x","cmd":"b"}]', /^SKEIN_EXTENSIONS: \[1\]\.name: duplicate/],
    ] as const) {
      let err: unknown;
      try {
        parseSkeinExtensions(raw);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(msg);
    }
  });
});

describe("goose config.yaml extensions", () => {
  // The shape goose writes (`goose configure`), with builtin and disabled entries mixed in.
  const yaml = `GOOSE_PROVIDER: openai
GOOSE_MODEL: gpt-4o
extensions:
  developer:
    bundled: true
    display_name: Developer Tools
    enabled: true
    name: developer
    timeout: 300
    type: builtin
  filesystem:
    args:
    - -y
    - "@modelcontextprotocol/server-filesystem"
    - /home/me
    bundled: null
    cmd: npx
    description: files
    enabled: true
    env_keys: []
    envs:
      LOG_LEVEL: debug
    name: filesystem
    timeout: 120
    type: stdio
  off:
    cmd: something
    args: []
    enabled: false
    envs: {}
    name: off
    timeout: 300
    type: stdio
  My Tools:
    cmd: my-mcp
    args: []
    enabled: true
    envs: {}
    name: My Tools
    timeout: null
    type: stdio
  remote:
    enabled: true
    name: remote
    type: sse
    uri: http://localhost:8080/sse
`;

  it("takes enabled stdio entries with goose's keys", () => {
    expect(parseGooseExtensions(yaml, "config.yaml")).toEqual([
      { name: "filesystem", cmd: "npx", args: ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"], env: { LOG_LEVEL: "debug" }, timeoutSeconds: 120 },
      { name: "My_Tools", cmd: "my-mcp", args: [], env: {}, timeoutSeconds: 300 },
    ]);
    expect(parseGooseExtensions("GOOSE_MODEL: x\n", "c")).toEqual([]);
  });

  it("refuses a broken stdio entry with a ConfigError naming the file and key", () => {
    expect(() => parseGooseExtensions("extensions:\n  bad:\n    type: stdio\n    enabled: true\n", "/x/config.yaml")).toThrow(
      "goose config /x/config.yaml: extensions.bad.cmd: must be a non-empty command",
    );
    expect(() => parseGooseExtensions("extensions: [\n", "/x/config.yaml")).toThrow(ConfigError);
  });

  describe("loadServiceExtensions", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "skein-ext-cfg-"));
      await writeFile(join(dir, "config.yaml"), yaml);
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it("prefers SKEIN_EXTENSIONS, else reads goose's file, and a missing file means none", async () => {
      const gooseConfigPath = join(dir, "config.yaml");
      const fromEnv = await loadServiceExtensions({ env: { SKEIN_EXTENSIONS: '[{"name":"a","cmd":"b"}]' }, gooseConfigPath });
      expect(fromEnv.map((e) => e.name)).toEqual(["a"]);
      const fromGoose = await loadServiceExtensions({ env: {}, gooseConfigPath });
      expect(fromGoose.map((e) => e.name)).toEqual(["filesystem", "My_Tools"]);
      expect(await loadServiceExtensions({ env: {}, gooseConfigPath: join(dir, "missing.yaml") })).toEqual([]);
    });
  });
});

describe("names and tool prefixes (defect 3: a name ending in '_' lost every tool)", () => {
  it("refuses a name ending in '_' or containing '__', naming the rule", () => {
    expect(invalid({ ...ok, name: "calc_" })).toMatch(/extensions\[0\]\.name.*must not end with '_'/);
    expect(invalid({ ...ok, name: "a__b" })).toMatch(/must not contain '__'/);
  });

  it("goose-style keys from display names never end in '_' (so `key__tool` splits at its first '__')", () => {
    expect(gooseKey("Developer (beta)")).toBe("Developer_beta");
    expect(gooseKey("My Tools")).toBe("My_Tools");
    expect(gooseKey("x!!")).toBe("x");
    expect(() => validateExtensionConfig({ ...ok, name: gooseKey("Developer (beta)") }, "e")).not.toThrow();
  });

  it("a goose config entry named 'Developer (beta)' becomes a valid extension", () => {
    const [e] = parseGooseExtensions("extensions:\n  dev:\n    enabled: true\n    type: stdio\n    name: Developer (beta)\n    cmd: node\n    args: []\n", "config.yaml");
    expect(e?.name).toBe("Developer_beta");
  });
});
