import { session } from "@skein/proto";
import type { Endpoint } from "./clients.js";

/**
 * A session's metadata and its messages, page by page: GetSession answers
 * with as many messages as fit in one response and a token for the rest.
 */
export async function* sessionPages(s: Endpoint<session.SessionServiceClient>, sessionId: string): AsyncGenerator<session.GetSessionResponse> {
  let messagePageToken = "";
  do {
    const page = await s.call(s.client.getSession, session.GetSessionRequest.fromPartial({ sessionId, includeMessages: true, messagePageToken }));
    yield page;
    messagePageToken = page.nextMessagePageToken;
  } while (messagePageToken !== "");
}

/** The session with every message, as one response (no page token). */
export async function wholeSession(s: Endpoint<session.SessionServiceClient>, sessionId: string): Promise<session.GetSessionResponse> {
  let whole: session.GetSessionResponse | undefined;
  for await (const page of sessionPages(s, sessionId)) {
    if (whole === undefined) whole = { ...page, nextMessagePageToken: "" };
    else whole.messages.push(...page.messages);
  }
  return whole!;
}

/** Every session, newest first, reading ListSessions page by page. */
export async function allSessions(s: Endpoint<session.SessionServiceClient>): Promise<session.Session[]> {
  const all: session.Session[] = [];
  let pageToken = "";
  do {
    const page = await s.call(s.client.listSessions, session.ListSessionsRequest.fromPartial({ pageSize: 1000, pageToken }));
    all.push(...page.sessions);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return all;
}
