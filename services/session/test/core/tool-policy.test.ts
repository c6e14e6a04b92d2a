// goose's permission.yaml read and written as PermissionManager does, and the verdict per mode.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@skein/runtime";
import { parse as parseYaml } from "yaml";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verdictFor } from "../../src/agent-loop/tool-policy.js";
import { PermissionFile } from "../../src/permission-file.js";

const log = createLogger("test", { destination: { write: () => true } as unknown as NodeJS.WritableStream, pretty: false });
let dir: string;
let file: PermissionFile;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "skein-perms-"));
  file = new PermissionFile(join(dir, "permission.yaml"), log);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tools = [
  { name: "dev__read", description: "", inputSchema: {}, extension: "dev", readOnly: true },
  { name: "dev__shell", description: "", inputSchema: {}, extension: "dev" },
];

describe("goose's permission.yaml", () => {
  it("as goose wrote it decides before the mode; smart_approve runs read-only tools and goose's cached verdicts", async () => {
    writeFileSync(
      file.path,
      "user:\n  always_allow:\n  - dev__ok\n  ask_before: []\n  never_allow:\n  - dev__nope\nsmart_approve:\n  always_allow:\n  - dev__judged\n  ask_before: []\n  never_allow: []\n",
    );
    expect(await verdictFor("approve", "dev__ok", tools, file)).toBe("run");
    expect(await verdictFor("approve", "dev__nope", tools, file)).toBe("deny");
    expect(await verdictFor("approve", "dev__read", tools, file)).toBe("ask");
    expect(await verdictFor("smart_approve", "dev__read", tools, file)).toBe("run");
    expect(await verdictFor("smart_approve", "dev__judged", tools, file)).toBe("run");
    expect(await verdictFor("smart_approve", "dev__shell", tools, file)).toBe("ask");
    expect(await verdictFor("smart_approve", "dev__nope", tools, file)).toBe("deny");
    expect(await verdictFor("auto", "dev__nope", tools, file)).toBe("run");
  });

  it("an always-* decision moves the tool into one list of `user`, keeping goose's other categories", async () => {
    writeFileSync(file.path, "smart_approve:\n  always_allow: []\n  ask_before: [dev__x]\n  never_allow: []\n");
    await file.setUser("dev__shell", "always_allow");
    await file.setUser("dev__shell", "never_allow");
    expect(parseYaml(readFileSync(file.path, "utf8"))).toEqual({
      smart_approve: { always_allow: [], ask_before: ["dev__x"], never_allow: [] },
      user: { always_allow: [], ask_before: [], never_allow: ["dev__shell"] },
    });
  });

  it("a missing or broken file counts as empty, as in goose", async () => {
    expect(await file.level("user", "dev__shell")).toBeUndefined();
    writeFileSync(file.path, "{{invalid yaml: [broken");
    expect(await file.level("user", "dev__shell")).toBeUndefined();
  });
});
