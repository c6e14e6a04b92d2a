/** The system prompt of every session: short, and saying where the agent works. */
export function systemPrompt(workingDir: string, now = new Date()): string {
  return [
    "You are a general-purpose AI agent run by skein, a service compatible with goose sessions.",
    `The current date is ${now.toISOString().slice(0, 10)}.`,
    workingDir ? `The working directory is ${workingDir}.` : "",
    "Use the tools offered when they help; tool names have the form extension__tool.",
  ]
    .filter(Boolean)
    .join("\n");
}
