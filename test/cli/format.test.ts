import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { describeServiceError, type Target } from "../../packages/cli/src/errors.js";
import { age, compact, shellQuote, table } from "../../packages/cli/src/format.js";

describe("format", () => {
  it("ages in the coarsest unit that fits", () => {
    const now = Date.UTC(2026, 0, 2);
    expect(age(new Date(now - 3_000), now)).toBe("3s");
    expect(age(new Date(now - 5 * 60_000), now)).toBe("5m");
    expect(age(new Date(now - 2 * 3_600_000), now)).toBe("2h");
    expect(age(new Date(now - 3 * 86_400_000), now)).toBe("3d");
    expect(age(new Date(now + 5_000), now)).toBe("0s");
    expect(age(undefined, now)).toBe("-");
    expect(age(new Date(0), now)).toBe("-");
  });

  it("pads table columns except the last", () => {
    expect(table(["name", "state"], [["a", "running"], ["longer", "x"]])).toBe("NAME    STATE\na       running\nlonger  x");
  });

  it("quotes shell words only when needed", () => {
    expect(["pi", "--model", "openai/gpt-5:high", "a b", "it's", "$(x)"].map(shellQuote).join(" ")).toBe(`pi --model openai/gpt-5:high 'a b' 'it'\\''s' '$(x)'`);
  });

  it("folds whitespace and cuts long text", () => {
    expect(compact("a\n  b\tc")).toBe("a b c");
    expect(compact("x".repeat(10), 5)).toBe("xxxx…");
  });
});

describe("error lines", () => {
  const t: Target = { service: "fleet", address: "10.0.0.1:50052", addrVar: "SKEIN_FLEET_ADDR", tokenSet: false };
  const err = (code: number, details: string) => Object.assign(new Error(details), { code, details, metadata: undefined as never });

  it("tells a channel that cannot connect from UNAVAILABLE sent by the service", () => {
    expect(describeServiceError(err(status.UNAVAILABLE, "No connection established. Last error: connect ECONNREFUSED 10.0.0.1:50052"), t)).toBe(
      "fleet service not reachable at 10.0.0.1:50052 (is it running? set SKEIN_FLEET_ADDR)",
    );
    expect(describeServiceError(err(status.UNAVAILABLE, "the service is shutting down"), t)).toBe("UNAVAILABLE: the service is shutting down");
    // The session service's database refused it: the service was reached, its message is kept.
    const db = "the session database is unreachable: connect ECONNREFUSED 10.0.0.9:5432 (retry)";
    expect(describeServiceError(err(status.UNAVAILABLE, db), t)).toBe(`UNAVAILABLE: ${db}`);
  });

  it("names the variable for auth problems and keeps other codes' details", () => {
    expect(describeServiceError(err(status.UNAUTHENTICATED, "missing authorization metadata"), t)).toBe("UNAUTHENTICATED: set SKEIN_AUTH_TOKEN");
    expect(describeServiceError(err(status.UNAUTHENTICATED, "invalid bearer token"), { ...t, tokenSet: true })).toBe("UNAUTHENTICATED: invalid bearer token (check SKEIN_AUTH_TOKEN)");
    expect(describeServiceError(err(status.NOT_FOUND, 'no agent named "x"'), t)).toBe('NOT_FOUND: no agent named "x"');
    expect(describeServiceError(err(status.DEADLINE_EXCEEDED, "Deadline exceeded"), t)).toBe("DEADLINE_EXCEEDED: the fleet service at 10.0.0.1:50052 did not answer in time");
  });
});
