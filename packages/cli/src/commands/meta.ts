import { say, type Command } from "../command.js";
import { completionScript, completionSetup, SHELLS, type Shell } from "../completion.js";
import { GLOBAL_OPTIONS } from "../help.js";
import { commandOptions, COMMANDS } from "../main.js";
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

const completion: Command = {
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
    // COMMANDS is read when the command runs, after main.js has finished loading.
    process.stdout.write(completionScript(shell as Shell, { commands: COMMANDS, globalOptions: GLOBAL_OPTIONS, optionsOf: commandOptions }, VERSION));
    return 0;
  },
};

export const metaCommands: readonly Command[] = [version, completion];
