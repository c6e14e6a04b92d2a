import { say, type Command } from "../command.js";
import { completionScript, completionSetup, SHELLS, type Shell } from "../completion.js";
import { GLOBAL_OPTIONS } from "../help.js";
import { commandOptions } from "../options.js";
import { VERSION } from "../version.js";

const version: Command = {
  name: "version",
  synopsis: "",
  summary: "print the CLI's version (also `skein --version`)",
  services: [],
  async run(inv) {
    inv.atMost(0);
    say(`skein ${VERSION}`);
    return 0;
  },
};

/** The completion command, over every command there is (handed in by the registry that holds it). */
const completion = (commands: () => readonly Command[]): Command => ({
  name: "completion",
  synopsis: "bash|zsh",
  summary: "print a shell completion script for commands, subcommands and options",
  // A getter: whether `skein` is on the user's PATH is known only when help is shown.
  get details() {
    return [`bash: ${completionSetup("bash")}`, `zsh:  ${completionSetup("zsh")}`];
  },
  argChoices: SHELLS,
  services: [],
  async run(inv) {
    const shell = inv.arg(0, "shell (bash or zsh)");
    inv.atMost(1);
    if (!(SHELLS as readonly string[]).includes(shell)) throw inv.usage(`shell must be bash or zsh, got ${JSON.stringify(shell)}`);
    process.stdout.write(completionScript(shell as Shell, { commands: commands(), globalOptions: GLOBAL_OPTIONS, optionsOf: commandOptions }, VERSION));
    return 0;
  },
});

export const metaCommands = (commands: () => readonly Command[]): readonly Command[] => [version, completion(commands)];
