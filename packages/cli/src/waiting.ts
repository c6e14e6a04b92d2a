/**
 * A "waiting for the model" spinner on a terminal, from sending a message until
 * the first output of its reply. Off the terminal it never writes anything,
 * so piped output stays exactly the reply.
 */
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const LABEL = "waiting for the model";

export class WaitingIndicator {
  private timer: NodeJS.Timeout | undefined;
  private shown = 0;

  constructor(
    private readonly write: (s: string) => void,
    private readonly enabled: boolean,
  ) {}

  start(): void {
    if (!this.enabled || this.timer) return;
    let i = 0;
    const draw = () => {
      const text = `${FRAMES[i++ % FRAMES.length]} ${LABEL}`;
      this.write(`\r${text}`);
      this.shown = text.length;
    };
    draw();
    this.timer = setInterval(draw, 100);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  /** Removes the spinner (blanking its line: not every terminal knows erase sequences). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.shown > 0) this.write(`\r${" ".repeat(this.shown)}\r`);
    this.shown = 0;
  }
}
