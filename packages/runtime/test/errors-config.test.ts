import { Writable } from "node:stream";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ConfigError, envEnum, envInt } from "../src/config.js";
import { InvalidArgumentError, NotFoundError, statusOf } from "../src/errors.js";
import { createLogger } from "../src/logger.js";

describe("statusOf", () => {
  it("maps domain errors to their code and message", () => {
    expect(statusOf(new InvalidArgumentError("workdir", "must be an absolute path"), "r1")).toEqual({
      code: status.INVALID_ARGUMENT,
      details: "workdir: must be an absolute path",
      internal: false,
    });
    expect(statusOf(new NotFoundError("session x not found"), "r1").code).toBe(status.NOT_FOUND);
  });
  it("hides anything unexpected behind INTERNAL with the request id", () => {
    const s = statusOf(new TypeError("secret path /etc/x"), "r-42");
    expect(s).toEqual({ code: status.INTERNAL, details: "internal error (request id r-42)", internal: true });
  });
});

describe("env parsing", () => {
  it("parses and range-checks integers, naming the variable", () => {
    expect(envInt("X", 5, { min: 1, max: 10 }, {})).toBe(5);
    expect(envInt("X", 5, { min: 1, max: 10 }, { X: "7" })).toBe(7);
    expect(() => envInt("X", 5, { min: 1, max: 10 }, { X: "11" })).toThrow(/X=11 is outside 1..10/);
    expect(() => envInt("X", 5, { min: 1, max: 10 }, { X: "7s" })).toThrow(ConfigError);
  });
  it("checks enums", () => {
    expect(envEnum("L", ["a", "b"] as const, "a", { L: "b" })).toBe("b");
    expect(() => envEnum("L", ["a", "b"] as const, "a", { L: "c" })).toThrow(/L="c" must be one of a, b/);
  });
});

describe("logger", () => {
  it("writes JSON and redacts secrets", () => {
    const lines: string[] = [];
    const dest = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const log = createLogger("t", { destination: dest, pretty: false });
    log.info({ authorization: "Bearer abc", env: { OPENAI_API_KEY: "sk-1" }, apiKey: "k" }, "hello");
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec.msg).toBe("hello");
    expect(rec.service).toBe("t");
    expect(lines[0]).not.toContain("abc");
    expect(lines[0]).not.toContain("sk-1");
    expect(rec.apiKey).toBe("[redacted]");
  });
});
