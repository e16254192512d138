# utils/parse_options.sh: command-line options for Shirabe shell scripts.
#
# Source this file after the script has given every option its default value:
#
#   stage=0
#   stop_stage=100
#   use_gpu=false
#   help_message="Usage: $0 [options] <data-dir>"
#   . utils/parse_options.sh || exit 1
#   data_dir=$1
#
# Rules:
#   --foo-bar VALUE   sets the shell variable foo_bar (dashes become underscores, so
#                     --stop-stage and --stop_stage are the same option). The variable must
#                     already exist; anything else is rejected as an invalid option.
#   --foo=VALUE       is rejected: options take the form "--name value".
#   true/false        a variable whose current value is true or false only accepts true, false,
#                     1 or 0; 1 and 0 are stored as true and false, so "if $use_gpu; then" works.
#   --config FILE     (may be repeated) FILE is sourced before the command-line options are
#                     applied, in the order given, so the command line always wins.
#   --help, -h        prints $help_message (or a generic message) and exits 0.
#   --cmd ""          is rejected: an empty --cmd is nearly always a scripting mistake.
# Parsing stops at the first argument that does not start with "--"; that argument and
# everything after it stay in "$@". Errors print one line on stderr and exit 1.
# The file is safe under "set -euo pipefail"; its own variables start with __po_ and are
# removed again before it returns.

__po_prog=${0##*/}

__po_fail() {
  echo "$__po_prog: $*" >&2
  exit 1
}

# Pass 1: find --help and the --config files without consuming any argument.
__po_configs=()
__po_args=("$@")
__po_i=0
while [ "$__po_i" -lt "${#__po_args[@]}" ]; do
  __po_arg=${__po_args[$__po_i]}
  case "$__po_arg" in
    --help|-h)
      if [ -n "${help_message+set}" ]; then
        printf '%s\n' "$help_message"
      else
        printf 'Usage: %s [options] <args>\n' "$__po_prog"
        printf 'Options are the variables set at the top of %s, given as --name value.\n' "$__po_prog"
      fi
      exit 0
      ;;
    --*=*)
      __po_fail "invalid option $__po_arg: options must be of the form --name value"
      ;;
    --*)
      if [ $((__po_i + 1)) -ge "${#__po_args[@]}" ]; then
        __po_fail "missing value for option $__po_arg"
      fi
      if [ "$__po_arg" = "--config" ]; then
        __po_configs+=("${__po_args[$((__po_i + 1))]}")
      fi
      __po_i=$((__po_i + 2))
      ;;
    *)
      break
      ;;
  esac
done

# Config files first, so that the command line overrides them.
for __po_config in ${__po_configs[@]+"${__po_configs[@]}"}; do
  [ -r "$__po_config" ] || __po_fail "config file $__po_config not found or not readable"
  . "$__po_config" || __po_fail "error while sourcing config file $__po_config"
done

# Pass 2: apply the options and drop them from "$@".
while [ $# -gt 0 ]; do
  case "$1" in
    --config)
      shift 2
      continue
      ;;
    --*)
      ;;
    *)
      break
      ;;
  esac
  __po_name=${1#--}
  __po_name=${__po_name//-/_}
  case "$__po_name" in
    ''|[0-9]*|*[!A-Za-z0-9_]*)
      __po_fail "invalid option $1"
      ;;
  esac
  [ -n "${!__po_name+set}" ] || __po_fail "invalid option $1"
  __po_value=$2
  case "${!__po_name}" in
    true|false)
      case "$__po_value" in
        true|1) __po_value=true ;;
        false|0) __po_value=false ;;
        *) __po_fail "expected true or false (or 1/0) for option $1, got '$__po_value'" ;;
      esac
      ;;
  esac
  if [ "$__po_name" = cmd ] && [ -z "$__po_value" ]; then
    __po_fail "empty argument to option $1"
  fi
  printf -v "$__po_name" '%s' "$__po_value"
  shift 2
done

unset -f __po_fail
unset __po_prog __po_configs __po_config __po_args __po_arg __po_i __po_name __po_value
true
