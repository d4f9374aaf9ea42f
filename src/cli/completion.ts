// `sockswitch completion bash|zsh`: a shell completion script, generated from the program
// itself (every command and its options), with app, service and node names asked from the
// daemon as you type (through the hidden `__names` command). Install:
//   sockswitch completion bash > /etc/bash_completion.d/sockswitch
//   sockswitch completion zsh > "${fpath[1]}/_sockswitch"

import type { Command } from "commander";
import { print, socketOf, withGlobals } from "./shared.js";

/** What each command's first words may be: resource kinds, or names of a kind. */
const ARGS: Record<string, string> = {
  get: "apps services sockets nodes proxies",
  describe: "app service node",
  completion: "bash zsh",
};
/** Commands whose arguments are app names. */
const APP_ARGS = ["stop", "rm", "logs"];

function optionsOf(cmd: Command): string {
  return cmd.options.flatMap((o) => [o.short, o.long].filter(Boolean)).join(" ");
}

export function bashScript(program: Command): string {
  const cmds = program.commands.filter((c) => !c.name().startsWith("__"));
  const cases = cmds
    .map((c) => `    ${c.name()}) opts="${optionsOf(c)}"; args="${ARGS[c.name()] ?? ""}" ;;`)
    .join("\n");
  return `# bash completion for sockswitch (sockswitch completion bash)
_sockswitch() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd="" i opts args
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in --socket) ((i++)) ;; -*) ;; *) cmd=\${COMP_WORDS[i]}; break ;; esac
  done
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${cmds.map((c) => c.name()).join(" ")} ${optionsOf(program)}" -- "$cur"))
    return
  fi
  case $cmd in
${cases}
  esac
  if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); return; fi
  case $cmd in
    ${APP_ARGS.join("|")}) args=$(sockswitch __names apps 2>/dev/null) ;;
    get|describe) if ((COMP_CWORD > i + 1)); then args=$(sockswitch __names "\${COMP_WORDS[i+1]}" 2>/dev/null); fi ;;
  esac
  COMPREPLY=($(compgen -W "$args" -- "$cur"))
}
complete -F _sockswitch sockswitch
`;
}

export function zshScript(program: Command): string {
  return `#compdef sockswitch
# zsh completion for sockswitch (sockswitch completion zsh): the bash one, through bashcompinit.
autoload -U +X bashcompinit && bashcompinit
${bashScript(program)}`;
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script (bash or zsh)")
    .argument("<shell>", "bash or zsh")
    .action(async (shell: string) => {
      const { InvalidArgumentError } = await import("../core/errors.js");
      if (shell === "bash") print(bashScript(program));
      else if (shell === "zsh") print(zshScript(program));
      else throw new InvalidArgumentError(`no completion for "${shell}"; use bash or zsh`);
    });

  // For the completion scripts: the names (and ids) of a kind, one a line; errors are silent.
  withGlobals(program.command("__names", { hidden: true }).argument("<kind>")).action(
    async (kind: string, _o, c: Command) => {
      const { apiGet } = await import("../api/client.js");
      const path = kind.startsWith("app")
        ? "/v1/apps?all=true"
        : kind.startsWith("s")
          ? "/v1/services"
          : "/v1/nodes";
      try {
        const body = await apiGet<{ items: { id?: string; name?: string }[] }>(socketOf(c), path);
        const names = new Set<string>();
        for (const i of body.items) {
          if (i.name) names.add(i.name);
          if (i.id && kind.startsWith("app")) names.add(i.id);
        }
        print([...names].join("\n"));
      } catch {
        // nothing to offer
      }
    },
  );
}
