/**
 * Following a pane means comparing captures of its last lines: each capture is
 * a window over the pane's output, so as output grows the window slides and a
 * later capture starts with some suffix of the earlier one.
 */

/** The longest suffix of `prev` that `cur` starts with, in lines. */
function overlap(prev: readonly string[], cur: readonly string[]): number {
  for (let k = Math.min(prev.length, cur.length); k > 0; k--) {
    let same = true;
    for (let i = 0; i < k && same; i++) same = prev[prev.length - k + i] === cur[i];
    if (same) return k;
  }
  return 0;
}

/**
 * The lines of `cur` (a later capture) not yet printed from `prev`. The last
 * line of `prev` may have changed since (a line printed in parts, a prompt
 * being typed): when the captures line up better without it, it is printed
 * again as it is now. Captures with nothing in common (the screen was cleared
 * or redrawn, or more output came than a capture holds) yield all of `cur`.
 */
export function unseenLines(prev: readonly string[], cur: readonly string[]): string[] {
  const whole = overlap(prev, cur);
  const withoutLast = prev.length > 1 ? overlap(prev.slice(0, -1), cur) : 0;
  return cur.slice(Math.max(whole, withoutLast));
}

/** CaptureOutput text as lines ("" is no lines; the final newline ends the last line). */
export function captureLines(text: string): string[] {
  return text === "" ? [] : text.replace(/\n$/, "").split("\n");
}
