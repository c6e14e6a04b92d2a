import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { session } from "@skein/proto";
import type { Endpoint } from "../clients.js";
import { say, type Command } from "../command.js";
import { describe } from "../errors.js";
import { EventPrinter } from "../render.js";
import { onInterrupt } from "../follow.js";
import { cancelReply, consumeReply, replyProblem, startReply } from "./reply.js";

type SessionEndpoint = Endpoint<session.SessionServiceClient>;

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

/** An interactive conversation on one session; one reply at a time. */
class Repl {
  private running: Running | undefined;
  private readonly printer = new EventPrinter({ showUser: false, showFinished: false, out: (s) => void process.stdout.write(s), err: writeErr });
  private readonly rl: Interface;

  constructor(
    private readonly s: SessionEndpoint,
    private readonly sessionId: string,
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
      if (!(await cancelReply(this.s, this.sessionId, r.requestId)) && this.running === r) r.cancelAgain = true;
    } catch (err) {
      writeErr(`skein: could not cancel: ${describe(err)}\n`);
    }
  }

  private async turn(text: string): Promise<void> {
    // Our own request id, so CancelReply can name the run before its first event arrives.
    const requestId = randomUUID();
    const r: Running = { requestId, stream: startReply(this.s, this.sessionId, text, requestId), cancelAsked: false, cancelAgain: false, stoppedWaiting: false };
    this.running = r;
    try {
      const outcome = await consumeReply(this.s, r.stream, (e) => {
        if (r.cancelAgain) {
          r.cancelAgain = false;
          void this.cancel(r);
        }
        this.printer.print(e);
      });
      const problem = replyProblem(outcome);
      if (outcome.reason === session.FinishReason.FINISH_REASON_CANCELLED) say("(cancelled)");
      else if (problem !== undefined) writeErr(`skein: ${problem}\n`);
    } catch (err) {
      this.printer.endLine();
      if (r.stoppedWaiting) say("(stopped waiting; the reply may still run in the service — `skein watch` follows it)");
      else writeErr(`skein: ${describe(err)}\n`);
    } finally {
      this.running = undefined;
      this.printer.endLine();
    }
  }
}

const chat: Command = {
  name: "chat",
  synopsis: "[ID] [--dir D] [--description T]",
  summary: "talk with a session's agent interactively (new session in the current directory without ID)",
  details: [
    "Replies stream as they arrive; tool calls and results show on one line each.",
    "Ctrl-C while a reply runs cancels it (CancelReply) and keeps the prompt.",
    "Ctrl-C at an empty prompt, Ctrl-D or /exit leaves.",
  ],
  options: {
    dir: { type: "string", value: "D", help: "working directory of a new session (default: the current directory)", complete: "directory" },
    description: { type: "string", value: "T", help: "description of a new session" },
  },
  services: ["session"],
  async run(inv) {
    inv.atMost(1);
    const s = inv.conn.session();
    let id = inv.optionalArg(0);
    if (id === undefined) {
      const dir = resolve(inv.string("dir") ?? ".");
      const res = await s.call(s.client.createSession, session.CreateSessionRequest.fromPartial({ workingDir: dir, description: inv.string("description") }));
      id = res.session!.id;
      say(`new session ${id} in ${dir}`);
    } else {
      if (inv.string("dir") !== undefined || inv.string("description") !== undefined) throw inv.usage("--dir and --description only apply to a new session (no ID)");
      const res = await s.call(s.client.getSession, session.GetSessionRequest.fromPartial({ sessionId: id }));
      say(`session ${id} in ${res.session!.workingDir} (${res.session!.messageCount} messages)`);
    }
    await new Repl(s, id).run();
    return 0;
  },
};

export const chatCommands: readonly Command[] = [chat];
