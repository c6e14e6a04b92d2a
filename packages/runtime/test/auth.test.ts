import { Metadata, status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { assertBindAllowed, checkBearer, isLoopbackAddress, isPublicMethod } from "../src/auth.js";
import { ConfigError } from "../src/config.js";
import { SkeinError } from "../src/errors.js";

describe("isLoopbackAddress", () => {
  it.each(["127.0.0.1:50051", "127.1.2.3:1", "localhost:50051", "[::1]:50051", "unix:/tmp/skein.sock"])("%s is loopback", (a) =>
    expect(isLoopbackAddress(a)).toBe(true),
  );
  it.each(["0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051", "example.com:443", "128.0.0.1:1"])("%s is not", (a) =>
    expect(isLoopbackAddress(a)).toBe(false),
  );
});

describe("assertBindAllowed", () => {
  it("refuses a public address without a token, naming the variable and the fix", () => {
    expect(() => assertBindAllowed("0.0.0.0:50052", "SKEIN_FLEET_ADDR", undefined)).toThrow(ConfigError);
    expect(() => assertBindAllowed("0.0.0.0:50052", "SKEIN_FLEET_ADDR", undefined)).toThrow(/SKEIN_FLEET_ADDR.*SKEIN_AUTH_TOKEN/);
  });
  it("allows it with a token, and loopback without one", () => {
    expect(() => assertBindAllowed("0.0.0.0:50052", "SKEIN_FLEET_ADDR", "t")).not.toThrow();
    expect(() => assertBindAllowed("127.0.0.1:50052", "SKEIN_FLEET_ADDR", undefined)).not.toThrow();
  });
});

describe("checkBearer", () => {
  const withAuth = (v?: string) => {
    const m = new Metadata();
    if (v !== undefined) m.set("authorization", v);
    return m;
  };
  it("accepts the right token, case-insensitive scheme", () => {
    expect(() => checkBearer(withAuth("Bearer abc"), "abc")).not.toThrow();
    expect(() => checkBearer(withAuth("bearer abc"), "abc")).not.toThrow();
  });
  it.each([[undefined], ["abc"], ["Bearer abd"], ["Bearer abcd"], ["Basic abc"]])("rejects %s with UNAUTHENTICATED", (v) => {
    try {
      checkBearer(withAuth(v), "abc");
      expect.unreachable();
    } catch (err) {
      expect((err as SkeinError).code).toBe(status.UNAUTHENTICATED);
    }
  });
  it("keeps health public and nothing else", () => {
    expect(isPublicMethod("/grpc.health.v1.Health/Check", "token")).toBe(true);
    expect(isPublicMethod("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "public")).toBe(true);
    expect(isPublicMethod("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "token")).toBe(false);
    expect(isPublicMethod("/skein.fleet.v1.FleetService/StartAgent", "public")).toBe(false);
  });
});
