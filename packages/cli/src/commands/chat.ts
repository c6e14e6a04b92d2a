import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { session } from "@skein/proto";
import type { Endpoint } from "../clients.js";
import { say, type Command } from "../command.js";
import { skeinCommand } from "../invocation.js";
import { describe } from "../errors.js";
import { EventPrinter, renderMessage } from "../render.js";
import { WaitingIndicator } from "../waiting.js";
import { sessionPages } from "../messages.js";
import { onInterrupt } from "../follow.js";
import { cancelReply, consumeReply, replyProblem, startReply } from "./reply.js";
import { approvalLine } from "./session-approvals.js";

type SessionEndpoint = Endpoint<session.SessionServiceClient>;

const ANSWERS: Record<string, session.ToolPermission> = {
  y: session.ToolPermission.TOOL_PERMISSION_ALLOW_ONCE,
  yes: session.ToolPermission.TOOL_PERMISSION_ALLOW_ONCE,
  a: session.ToolPermission.TOOL_PERMISSION_ALWAYS_ALLOW,
  always: session.ToolPermission.TOOL_PERMISSION_ALWAYS_ALLOW,
  n: session.ToolPermission.TOOL_PERMISSION_DENY_ONCE,
  no: session.ToolPermission.TOOL_PERMISSION_DENY_ONCE,
  d: session.ToolPermission.TOOL_PERMISSION_ALWAYS_DENY,
};

const writeErr = (s: string) => void process.stderr.write(s);

/** The reply in progress and where its cancellation stands. */
interface Running {
  readonly requestId: string;
  readonly stream: ClientReadableStream<session.ReplyResponse>;
  cancelAsked: boolean;
  /** CancelReply came before the service knew the run: ask again on its first event. */
  cancelAgain: boolean;
  stoppedWaiting: boolean;
}

/** What a new session is created with, on the first message. */
interface NewSession {
  readonly workingDir: string;
  readonly description: string | undefined;
}

/** An interactive conversation on one session; one reply at a time. */
class Repl {
  private running: Running | undefined;
  private readonly waiting = new WaitingIndicator((s) => void process.stdout.write(s), process.stdout.isTTY === true);
  // Whatever the reply prints first ends the waiting indicator.
  private readonly printer = new EventPrinter({
    showUser: false,
    showFinished: false,
    out: (s) => {
      this.waiting.stop();
      process.stdout.write(s);
    },
    err: (s) => {
      this.waiting.stop();
      writeErr(s);
    },
  });
  private readonly rl: Interface;

  /** `sessionId` undefined: a session is created with the first message, not before. */
  constructor(
    private readonly s: SessionEndpoint,
    public sessionId: string | undefined,
    private readonly create: NewSession,
  ) {
    this.rl = createInterface({ input: process.stdin, output: process.stdout, prompt: "> ", terminal: Boolean(process.stdin.isTTY && process.stdout.isTTY) });
    // A terminal delivers Ctrl-C as a key to readline; a signal arrives when input is piped.
    this.rl.on("SIGINT", () => this.interrupt());
  }

  async run(): Promise<void> {
    const off = onInterrupt(() => this.interrupt());
    try {
      this.rl.prompt();
      for await (const line of this.rl) {
        const text = line.trim();
        if (text === "/exit" || text === "/quit") break;
        if (text !== "") await this.turn(text);
        this.rl.prompt();
      }
    } finally {
      off();
      this.rl.close();
    }
    if (this.rl.terminal) say();
  }

  /** Ctrl-C: cancel the running reply, else clear the line, else leave. */
  private interrupt(): void {
    const r = this.running;
    if (r) {
      if (r.cancelAsked) {
        r.stoppedWaiting = true;
        r.stream.cancel();
        return;
      }
      r.cancelAsked = true;
      this.printer.endLine();
      writeErr("^C cancelling the reply (Ctrl-C again to stop waiting)\n");
      void this.cancel(r);
      return;
    }
    if (this.rl.terminal && this.rl.line !== "") {
      this.rl.write(null, { ctrl: true, name: "e" });
      this.rl.write(null, { ctrl: true, name: "u" });
      // TERM=dumb readline ignores editing keys; its line is a plain field.
      if (this.rl.line !== "") Object.assign(this.rl, { line: "", cursor: 0 });
      process.stdout.write("^C\n");
      this.rl.prompt();
      return;
    }
    this.rl.close();
  }

  private async cancel(r: Running): Promise<void> {
    try {
      if (!(await cancelReply(this.s, this.sessionId!, r.requestId)) && this.running === r) r.cancelAgain = true;
    } catch (err) {
      writeErr(`skein: could not cancel: ${describe(err)}\n`);
    }
  }

  /** The session, created now when this is the first message of a new chat. */
  private async session(): Promise<string | undefined> {
    if (this.sessionId !== undefined) return this.sessionId;
    try {
      const res = await this.s.call(this.s.client.createSession, session.CreateSessionRequest.fromPartial(this.create));
      this.sessionId = res.session!.id;
      say(`new session ${this.sessionId} in ${this.create.workingDir}`);
      return this.sessionId;
    } catch (err) {
      writeErr(`skein: cannot create the session: ${describe(err)}\n`);
      return undefined;
    }
  }

  /** Asked one at a time, in the order the reply asks; the reply goes on once each is answered. */
  private asking: Promise<void> = Promise.resolve();

  private askApproval(sessionId: string, a: session.ToolApprovalRequest): void {
    this.asking = this.asking.then(async () => {
      this.waiting.stop();
      this.printer.endLine();
      const question = `Allow ${approvalLine(a)}? [y]es / [a]lways / [n]o / [d]eny always `;
      let permission: session.ToolPermission | undefined;
      while (permission === undefined) {
        const answer = await new Promise<string | undefined>((done) => {
          this.rl.once("close", () => done(undefined));
          this.rl.question(question, done);
        });
        // Input ended: the call keeps waiting in the service (`skein session approve` decides it later).
        if (answer === undefined) return;
        permission = ANSWERS[answer.trim().toLowerCase()];
      }
      try {
        await this.s.call(this.s.client.confirmToolCall, session.ConfirmToolCallRequest.fromPartial({ sessionId, toolCallId: a.toolCallId, permission }));
      } catch (err) {
        writeErr(`skein: could not decide ${a.toolCallId}: ${describe(err)}\n`);
      }
    });
  }

  private async turn(text: string): Promise<void> {
    const sessionId = await this.session();
    if (sessionId === undefined) return;
    // Our own request id, so CancelReply can name the run before its first event arrives.
    const requestId = randomUUID();
    const r: Running = { requestId, stream: startReply(this.s, sessionId, text, requestId), cancelAsked: false, cancelAgain: false, stoppedWaiting: false };
    this.running = r;
    this.waiting.start();
    try {
      const outcome = await consumeReply(this.s, r.stream, (e) => {
        if (r.cancelAgain) {
          r.cancelAgain = false;
          void this.cancel(r);
        }
        if (e.event?.$case === "approvalRequired") this.askApproval(sessionId, e.event.value);
        else this.printer.print(e);
      });
      const problem = replyProblem(outcome);
      if (outcome.reason === session.FinishReason.FINISH_REASON_CANCELLED) say("(cancelled)");
      else if (problem !== undefined) writeErr(`skein: ${problem}\n`);
    } catch (err) {
      this.printer.endLine();
      if (r.stoppedWaiting) say(`(stopped waiting; the reply may still run in the service — \`${skeinCommand()} watch\` follows it)`);
      else writeErr(`skein: ${describe(err)}\n`);
    } finally {
      this.waiting.stop();
      this.running = undefined;
      this.printer.endLine();
    }
  }
}

/** How many messages from the start of the last `exchanges` exchanges (each begins with a typed user message). */
export function lastExchangesStart(messages: readonly session.Message[], exchanges: number): number {
  if (exchanges <= 0) return messages.length;
  // A tool result travels as a user message too: only user text starts an exchange.
  const starts = messages.flatMap((m, i) => (m.role === session.Role.ROLE_USER && m.content.some((c) => c.kind?.$case === "text") ? [i] : []));
  return starts.length <= exchanges ? 0 : starts[starts.length - exchanges]!;
}

/** The session's metadata and its last `exchanges` exchanges, reading its message pages and keeping only that tail. */
async function recent(s: SessionEndpoint, id: string, exchanges: number): Promise<{ info: session.Session; tail: session.Message[]; earlier: number }> {
  let info: session.Session | undefined;
  let tail: session.Message[] = [];
  let earlier = 0;
  for await (const page of sessionPages(s, id)) {
    info ??= page.session!;
    tail.push(...page.messages);
    // Later pages only add exchanges: what falls before the last ones now never comes back.
    const from = lastExchangesStart(tail, exchanges);
    earlier += from;
    tail = tail.slice(from);
  }
  return { info: info!, tail, earlier };
}

function showRecent(id: string, tail: readonly session.Message[], earlier: number): void {
  if (tail.length === 0) return;
  if (earlier > 0) say(`(${earlier} earlier messages: \`${skeinCommand()} session show ${id}\` shows all)`);
  const names = new Map<string, string>();
  for (const m of tail) for (const line of renderMessage(m, names)) say(line);
}

/** How to continue this session later, with skein and with the goose CLI (same session store format). */
function sayHowToResume(id: string): void {
  say(`resume with: ${skeinCommand()} chat ${id}`);
  say(`    or goose: goose session --resume --session-id ${id}`);
}

const chat: Command = {
  name: "chat",
  synopsis: "[ID [--history N]] [--dir D] [--description T]",
  summary: "talk with a session's agent interactively (without ID, a new session in the current directory)",
  details: [
    "Replies stream as they arrive; tool calls and results show on one line each.",
    "Ctrl-C while a reply runs cancels it (CancelReply) and keeps the prompt.",
    "A tool call waiting for approval asks: [y]es / [a]lways / [n]o / [d]eny always.",
    "Ctrl-C at an empty prompt, Ctrl-D or /exit leaves, printing how to resume.",
    "Without ID the session is created when the first message is sent.",
  ],
  options: {
    dir: { type: "string", value: "D", help: "working directory of a new session (default: the current directory)", complete: "directory" },
    description: { type: "string", value: "T", help: "description of a new session" },
    history: { type: "string", value: "N", help: "exchanges of a resumed session shown first (default 3; 0 for none)" },
  },
  services: ["session"],
  async run(inv) {
    inv.atMost(1);
    const s = inv.conn.session();
    const id = inv.optionalArg(0);
    const history = inv.int("history", 0, 1000) ?? 3;
    const create: NewSession = { workingDir: resolve(inv.string("dir") ?? "."), description: inv.string("description") };
    if (id !== undefined) {
      if (inv.string("dir") !== undefined || inv.string("description") !== undefined) throw inv.usage("--dir and --description only apply to a new session (no ID)");
      const { info, tail, earlier } = await recent(s, id, history);
      say(`session ${id} in ${info.workingDir} (${info.messageCount} messages)`);
      showRecent(id, tail, earlier);
    } else if (inv.string("history") !== undefined) throw inv.usage("--history only applies to a resumed session (with ID)");
    const repl = new Repl(s, id, create);
    await repl.run();
    if (repl.sessionId !== undefined) sayHowToResume(repl.sessionId);
    return 0;
  },
};

export const chatCommands: readonly Command[] = [chat];
