/**
 * tmux marks a dead pane kept by remain-on-exit by moving to the bottom row and
 * writing this line there; the rows between the last output and it are blank
 * screen, not output.
 */
const DEAD_PANE_LINE = /^Pane is dead\b/;

/**
 * `capture-pane -S -N` gives N lines of history plus the whole visible screen,
 * whose unused rows are blank: the caller asked for the last N lines of output.
 */
export function lastLines(captured: string, n: number): string {
  const lines = captured.replace(/\n+$/, "").split("\n");
  dropTrailingBlanks(lines);
  const last = lines.at(-1);
  if (last !== undefined && DEAD_PANE_LINE.test(last)) {
    lines.pop();
    dropTrailingBlanks(lines);
    lines.push(last);
  }
  return lines.length === 0 ? "" : `${lines.slice(-n).join("\n")}\n`;
}

/** Whether tmux has written its line for a dead pane (as the last line of a capture). */
export function endsWithDeadPaneLine(text: string): boolean {
  return DEAD_PANE_LINE.test(text.replace(/\n+$/, "").split("\n").at(-1) ?? "");
}

function dropTrailingBlanks(lines: string[]): void {
  while (lines.length > 0 && lines.at(-1)!.trim() === "") lines.pop();
}
