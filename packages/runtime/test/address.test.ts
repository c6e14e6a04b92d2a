import { describe, expect, it } from "vitest";
import { parseListenAddress } from "../src/address.js";
import { ConfigError } from "../src/config.js";

describe("parseListenAddress", () => {
  it("accepts host:port, [ipv6]:port and unix:/path", () => {
    expect(parseListenAddress("A", "127.0.0.1:50051")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 50051 });
    expect(parseListenAddress("A", "localhost:0")).toEqual({ kind: "tcp", host: "localhost", port: 0 });
    expect(parseListenAddress("A", "[::1]:65535")).toEqual({ kind: "tcp", host: "::1", port: 65535 });
    expect(parseListenAddress("A", "unix:/run/skein.sock")).toEqual({ kind: "unix", path: "/run/skein.sock" });
    expect(parseListenAddress("A", "unix:///run/skein.sock")).toEqual({ kind: "unix", path: "/run/skein.sock" });
  });

  it.each([
    ["garbage", 'A="garbage" must be host:port (port 0-65535), [ipv6]:port or unix:/path'],
    ["127.0.0.1:notaport", 'A="127.0.0.1:notaport" has port "notaport": a port is a whole number 0-65535'],
    ["127.0.0.1:99999", 'A="127.0.0.1:99999" has port 99999: a port is a whole number 0-65535'],
    ["127.0.0.1:", 'A="127.0.0.1:" has port "": a port is a whole number 0-65535'],
    [":50051", 'A=":50051" must be host:port (port 0-65535), [ipv6]:port or unix:/path'],
    ["::1:50051", 'A="::1:50051" must be host:port (port 0-65535), [ipv6]:port or unix:/path'],
    ["unix:", 'A="unix:" must be host:port (port 0-65535), [ipv6]:port or unix:/path'],
    ["ho$t:1", 'A="ho$t:1" has host "ho$t": not a hostname or IP address'],
  ])("refuses %j naming the variable, the value and the rule", (value, message) => {
    expect(() => parseListenAddress("A", value)).toThrow(ConfigError);
    expect(() => parseListenAddress("A", value)).toThrow(message);
  });
});
