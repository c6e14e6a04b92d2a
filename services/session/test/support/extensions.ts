import { session as pb } from "@skein/proto";
import { call, type TestMarker } from "@skein/testkit";
import { everythingEntry, fixtureEntry } from "../extensions/helpers.js";
import type { Client } from "./harness.js";

/** The real third-party MCP server, as a CreateSession/AddExtension config. */
export function everythingExt(name = "everything"): pb.ExtensionConfig {
  return pb.ExtensionConfig.fromPartial({ name, cmd: process.execPath, args: [everythingEntry, "stdio"] });
}

/** The small fixture server (crash, sleep, fail, pid tools); `env` e.g. FIXTURE_STAY=1. */
export function fixtureExt(name = "fixture", env: Record<string, string> = {}): pb.ExtensionConfig {
  return pb.ExtensionConfig.fromPartial({ name, cmd: process.execPath, args: [fixtureEntry], env });
}

/** The fixture server with `--skein-test=<marker>` among its arguments: processesMarked() finds it wherever it ends up (an orphan too). */
export function markedFixtureExt(marker: TestMarker, name = "fixture", env: Record<string, string> = {}): pb.ExtensionConfig {
  return pb.ExtensionConfig.fromPartial({ ...fixtureExt(name, env), args: [fixtureEntry, `--skein-test=${marker}`] });
}

export async function createWith(c: Client, workingDir: string, extensions: pb.ExtensionConfig[], description?: string): Promise<pb.Session> {
  return (await call(c, c.createSession, pb.CreateSessionRequest.fromPartial({ workingDir, extensions, description }))).session!;
}

export async function listTools(c: Client, sessionId: string): Promise<pb.Tool[]> {
  return (await call(c, c.listTools, pb.ListToolsRequest.fromPartial({ sessionId }))).tools;
}

export function stats(c: Client): Promise<pb.GetStatsResponse> {
  return call(c, c.getStats, pb.GetStatsRequest.fromPartial({}));
}
