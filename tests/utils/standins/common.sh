# Shared by the scheduler stand-ins in this directory (sourced, not run).
# State lives in $STANDIN_STATE: <tool>.argv (argv of the last call, one argument per line),
# next_id (job id counter), job.<id> (process ids of the job's tasks), exit.<task> (exit
# status of the job script for that task).
set -u
state=${STANDIN_STATE:?STANDIN_STATE must point to a scratch directory}
mkdir -p "$state"

record_argv() {  # record_argv <tool> <args...>
  local tool=$1
  shift
  printf '%s\n' "$@" > "$state/$tool.argv"
  printf '%s\n' "$*" >> "$state/$tool.calls"
}

new_job_id() {
  local id
  id=$(cat "$state/next_id" 2>/dev/null || echo 123)
  echo $((id + 1)) > "$state/next_id"
  echo "$id"
}

# start_task <queue-log> <script> <task> VAR=value...: run the job script in the background
# in its own process group (so that cancelling can kill the whole task), record its exit
# status in exit.<task>, and print its pid.
start_task() {
  local out=$1 script=$2 task=$3
  shift 3
  env "$@" setsid bash -c 'bash "$1"; echo $? > "$2"' _ "$script" "$state/exit.$task" \
    < /dev/null >> "$out" 2>&1 &
  echo $!
}

job_alive() {  # job_alive <id>: true while any task of the job runs (zombies do not count)
  local pid stat
  [ -f "$state/job.$1" ] || return 1
  for pid in $(cat "$state/job.$1"); do
    stat=$(ps -o stat= -p "$pid" 2>/dev/null) && [[ $stat != Z* ]] && return 0
  done
  return 1
}

cancel_job() {  # cancel_job <id>
  local pid
  [ -f "$state/job.$1" ] || return 0
  for pid in $(cat "$state/job.$1"); do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}
