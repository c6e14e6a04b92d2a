/**
 * Shell completion scripts for bash and zsh, generated from the same command
 * and option model as parsing and help, so they complete exactly what the CLI
 * takes: commands, subcommands, each command's options and their values.
 *
 * Both scripts share one POSIX-style function, `_skein_candidates INDEX WORDS…`,
 * that prints what kind of thing to complete on its first line (words, file,
 * directory or none) and the candidate words after it; each shell's wrapper
 * hands that to its own completion machinery.
 */
import type { Command } from "./command.js";
import { skeinCommand } from "./invocation.js";
import type { OptionDef, Options } from "./options.js";

export type Shell = "bash" | "zsh";
export const SHELLS: readonly Shell[] = ["bash", "zsh"];

interface Model {
  readonly commands: readonly Command[];
  readonly globalOptions: Options;
  /** Everything a command accepts after its words. */
  readonly optionsOf: (c: Command) => Options;
}

/** A word for a shell `case` pattern or `printf` argument, quoted. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function valueKind(o: OptionDef): string {
  if (o.choices) return `choices ${o.choices.join(" ")}`;
  return o.complete ?? "text";
}

/** Long and short spellings of every option that takes a value, with what its value completes to. */
function kindCases(key: string, options: Options): string[] {
  const out: string[] = [];
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== "string") continue;
    const patterns = [`${key}|--${name}`, ...(o.short ? [`${key}|-${o.short}`] : [])].map(q).join("|");
    out.push(`    ${patterns}) printf '%s\\n' ${q(valueKind(o))} ;;`);
  }
  return out;
}

function optionWords(options: Options): string {
  return Object.keys(options)
    .map((n) => `--${n}`)
    .join(" ");
}

function sharedFunctions(m: Model): string {
  const groups = [...new Set(m.commands.filter((c) => c.name.includes(" ")).map((c) => c.name.split(" ")[0]!))];
  const top = [...new Set(m.commands.map((c) => c.name.split(" ")[0]!)), "help"];
  const optionCases = [`    '') printf '%s\\n' ${q(optionWords(m.globalOptions))} ;;`, ...m.commands.map((c) => `    ${q(c.name)}) printf '%s\\n' ${q(optionWords(m.optionsOf(c)))} ;;`)];
  const kinds = [...kindCases("", m.globalOptions), ...m.commands.flatMap((c) => kindCases(c.name, m.optionsOf(c)))];
  const subs = groups.map((g) => `    ${q(g)}) printf '%s\\n' ${q(m.commands.filter((c) => c.name.startsWith(`${g} `)).map((c) => c.name.slice(g.length + 1)).join(" "))} ;;`);
  const args = m.commands.filter((c) => c.argChoices?.length).map((c) => `    ${q(c.name)}) printf '%s\\n' ${q(c.argChoices!.join(" "))} ;;`);
  return `# The options COMMAND ('' before one) takes.
_skein_options() {
  case "$1" in
${optionCases.join("\n")}
  esac
}

# What the value of option $2 of command $1 completes to: choices …, file, directory or text.
# Fails for an option that takes no value.
_skein_kind() {
  case "$1|$2" in
${kinds.join("\n")}
    *) return 1 ;;
  esac
}

_skein_subcommands() {
  case "$1" in
${subs.join("\n")}
    *) return 1 ;;
  esac
}

_skein_args() {
  case "$1" in
${args.join("\n")}
  esac
}

# $1: index of the word to complete in the words that follow, the program's name being word 0.
_skein_candidates() {
  local cword=$1 cmd='' w='' pending='' after=0 help=0 i=1 cur='' kind=''
  shift 2
  while [ "$i" -lt "$cword" ]; do
    w=\${1-}
    shift
    i=$((i + 1))
    if [ "$after" = 1 ]; then continue; fi
    if [ -n "$pending" ]; then
      # bash splits --opt=value at '=': the value follows it.
      if [ "$w" = '=' ]; then continue; fi
      pending=''
      continue
    fi
    case "$w" in
      --) after=1 ;;
      --*=*) ;;
      -*) if _skein_kind "$cmd" "$w" >/dev/null; then pending=$w; fi ;;
      *)
        if [ -z "$cmd" ] && [ "$w" = help ] && [ "$help" = 0 ]; then help=1
        elif [ -z "$cmd" ]; then cmd=$w
        elif _skein_subcommands "$cmd" >/dev/null && [ "\${cmd#* }" = "$cmd" ]; then cmd="$cmd $w"
        fi ;;
    esac
  done
  cur=\${1-}
  if [ "$cur" = '=' ]; then cur=''; fi
  case "$cur" in
    --*=*) pending=\${cur%%=*} ;;
  esac
  if [ "$after" = 1 ]; then printf 'file\\n'; return; fi
  if [ -n "$pending" ]; then
    kind=$(_skein_kind "$cmd" "$pending") || kind=text
    case "$kind" in
      'choices '*) printf 'words\\n'; printf '%s\\n' \${kind#choices } | tr ' ' '\\n' ;;
      file | directory) printf '%s\\n' "$kind" ;;
      *) printf 'none\\n' ;;
    esac
    return
  fi
  case "$cur" in
    -*)
      if [ "$help" = 1 ]; then printf 'none\\n'; return; fi
      printf 'words\\n'
      _skein_options "$cmd" | tr ' ' '\\n'
      return ;;
  esac
  if [ -z "$cmd" ]; then
    printf 'words\\n'
    if [ "$help" = 1 ]; then printf '%s\\n' ${q(top.filter((t) => t !== "help").join(" "))} | tr ' ' '\\n'; else printf '%s\\n' ${q(top.join(" "))} | tr ' ' '\\n'; fi
    return
  fi
  if [ "\${cmd#* }" = "$cmd" ] && _skein_subcommands "$cmd" >/dev/null; then
    printf 'words\\n'
    _skein_subcommands "$cmd" | tr ' ' '\\n'
    return
  fi
  if [ "$help" = 0 ] && [ -n "$(_skein_args "$cmd")" ]; then
    printf 'words\\n'
    _skein_args "$cmd" | tr ' ' '\\n'
    return
  fi
  printf 'none\\n'
}`;
}

const BASH_WRAPPER = `_skein() {
  local cur=\${COMP_WORDS[COMP_CWORD]} out kind list=''
  [ "$cur" = '=' ] && cur=''
  out=$(_skein_candidates "$COMP_CWORD" "\${COMP_WORDS[@]}")
  kind=\${out%%$'\\n'*}
  case $out in *$'\\n'*) list=\${out#*$'\\n'} ;; esac
  COMPREPLY=()
  case $kind in
    words) _skein_reply compgen -W "$list" -- "$cur" ;;
    file) compopt -o filenames 2>/dev/null; _skein_reply compgen -f -- "$cur" ;;
    directory) compopt -o filenames 2>/dev/null; _skein_reply compgen -d -- "$cur" ;;
  esac
}

# One reply per line of output, spaces kept (no mapfile: macOS still ships bash 3.2).
_skein_reply() {
  local line
  while IFS= read -r line; do COMPREPLY+=("$line"); done < <("$@")
}
complete -F _skein skein`;

const ZSH_WRAPPER = `_skein() {
  local out kind
  local -a candidates
  out=$(_skein_candidates $((CURRENT - 1)) "\${words[@]}")
  kind=\${out%%$'\\n'*}
  candidates=(\${(f)\${out#*$'\\n'}})
  [[ $out == *$'\\n'* ]] || candidates=()
  [[ \${words[CURRENT]} == --*=* ]] && compset -P '*='
  case $kind in
    words) compadd -a candidates ;;
    file) _files ;;
    directory) _files -/ ;;
  esac
}
if (( ! $+functions[compdef] )); then
  autoload -Uz compinit && compinit
fi
compdef _skein skein`;

/**
 * How to turn completion on, per shell. The scripts complete the command
 * `skein`, so when it is not on the user's PATH (a checkout run with npx) the
 * first step is putting it there.
 */
export function completionSetup(shell: Shell): string {
  const first = skeinCommand() === "skein" ? "" : "put skein on your PATH (`npm link` in the checkout), then ";
  return `${first}add \`source <(skein completion ${shell})\` to ~/.${shell}rc`;
}

export function completionScript(shell: Shell, m: Model, version: string): string {
  const how = completionSetup(shell);
  // zsh reads `#compdef` on the first line when the file sits on its $fpath.
  const head = shell === "zsh" ? ["#compdef skein"] : [];
  return [...head, `# ${shell} completion for skein ${version}: ${how}`, sharedFunctions(m), "", shell === "bash" ? BASH_WRAPPER : ZSH_WRAPPER, ""].join("\n");
}
