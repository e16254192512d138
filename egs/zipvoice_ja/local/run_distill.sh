#!/usr/bin/env bash
# Distil a trained ZipVoice into ZipVoiceDistill (run.sh stages 9-12), as upstream does in two
# stages: 9 trains the student against the fixed teacher, 10 averages it; 11 trains it further
# against an EMA copy of itself and averages it; 12 compares dev sampling losses of teacher and
# student in a table of --results-md. Steps whose output exists are skipped.
#
#   local/run_distill.sh --teacher exp/zipvoice_ja/epoch-12-avg-4.pt \
#       --train-manifest data/fbank/mini_cuts_train_tokens.jsonl.gz \
#       --dev-manifest data/fbank/mini_cuts_dev_tokens.jsonl.gz --distill-dir exp/zipvoice_ja/distill
#
# Run from egs/zipvoice_ja.
set -euo pipefail

stage=9
stop_stage=12
teacher=                     # teacher checkpoint, model.json and tokens.txt beside it (stage 5's model)
train_manifest=
dev_manifest=
distill_dir=
iters=200                    # first stage batches
iters2=50                    # second stage batches
lr=0.0005
lr2=0.0001
avg=2                        # checkpoints averaged after each stage
max_duration=60
quadratic_duration=
world_size=1
use_fp16=false
results_md=RESULTS.md
key=distill
use_gpu=true                 # training and dev-loss jobs ask for a GPU (--gpu 1)
device=auto                  # --device of their binaries: auto | cpu | cuda | cuda:N | mps

help_message="Usage: $0 [options]   (run from egs/zipvoice_ja)
Options (default in parentheses):
  --stage N / --stop-stage N     9 first stage, 10 its average, 11 second stage, 12 dev losses ($stage / $stop_stage)
  --teacher FILE                 teacher checkpoint with model.json and tokens.txt beside it (required)
  --train-manifest / --dev-manifest FILE   tokenised cuts (required)
  --distill-dir DIR              output: first/, second/, dev_*.json (required)
  --iters / --iters2 N           batches of the first / second stage ($iters / $iters2)
  --lr / --lr2 LR                their fixed learning rates ($lr / $lr2)
  --avg N                        checkpoints averaged after each stage ($avg)
  --max-duration S               seconds of audio per batch ($max_duration)
  --quadratic-duration S         lhotse's quadratic duration for batching (off)
  --world-size N                 DDP processes ($world_size)
  --use-fp16 BOOL                fp16 autocast on CUDA ($use_fp16)
  --results-md FILE              Markdown file with the comparison table ($results_md)
  --key KEY                      section key of the table in --results-md ($key)
  --use-gpu BOOL                 training (\$cuda_cmd) and dev-loss (\$decode_cmd) jobs ask for a GPU ($use_gpu)
  --device DEVICE                auto | cpu | cuda | cuda:N | mps for those jobs; cpu if --use-gpu false ($device)
Logs: \$distill_dir/log/."

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
for v in teacher train_manifest dev_manifest distill_dir; do
  [ -n "${!v}" ] || { echo "$0: --${v//_/-} is required (see --help)" >&2; exit 2; }
done
[ -f "$teacher" ] || { echo "$0: $teacher: no such teacher checkpoint" >&2; exit 2; }
ngpu=1; [ "$use_gpu" = true ] || ngpu=0
case $device in auto|cpu|mps|cuda|cuda:[0-9]*) ;;
  *) echo "$0: --device $device: expected auto, cpu, cuda, cuda:N or mps" >&2; exit 2 ;; esac
case $use_gpu:$device in false:auto) device=cpu ;;
  false:cuda*) echo "$0: --device $device needs --use-gpu true" >&2; exit 2 ;; esac

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (run_distill.sh:${BASH_LINENO[0]}) $*"; }
first_avg=iter-$iters-avg-$avg.pt
second_avg=iter-$iters2-avg-$avg.pt

train() {  # train NAME TEACHER ITERS LR: train_zipvoice_distill as a $cuda_cmd job
  if [ -f "$distill_dir/$1/checkpoint-$3.pt" ]; then log "  $distill_dir/$1/checkpoint-$3.pt exists, skipping"; return; fi
  $cuda_cmd --gpu $((ngpu * world_size)) "$distill_dir/log/train_$1.log" \
    python3 -m zipvoice.bin.train_zipvoice_distill --device "$device" --distill-stage "$1" --teacher-model "$2" \
      --exp-dir "$distill_dir/$1" --train-manifest "$train_manifest" --dev-manifest "$dev_manifest" \
      --num-iters "$3" --base-lr "$4" --save-every-n $(( $3 / (avg + 1) > 0 ? $3 / (avg + 1) : 1 )) \
      --max-duration "$max_duration" ${quadratic_duration:+--quadratic-duration "$quadratic_duration"} \
      --average-period 1 --drop-last 0 --world-size "$world_size" --use-fp16 "$use_fp16"
}
average() {  # average NAME ITERS
  [ -f "$distill_dir/$1/iter-$2-avg-$avg.pt" ] ||
    python3 -m zipvoice.bin.generate_averaged_model --exp-dir "$distill_dir/$1" --iter "$2" --avg "$avg"
}
dev_loss() {  # dev_loss NAME MODEL_DIR CHECKPOINT NUM_STEP [options]: a $decode_cmd job writing $distill_dir/dev_NAME.json
  local name=$1 dir=$2 ckpt=$3 n=$4
  shift 4
  $decode_cmd --gpu $ngpu "$distill_dir/log/dev_$name.log" \
    python3 -m zipvoice.bin.compute_dev_loss --device "$device" --model-dir "$dir" --checkpoint-name "$ckpt" \
      --dev-manifest "$dev_manifest" --num-step "$n" --output "$distill_dir/dev_$name.json" "$@"
}

if [ "$stage" -le 9 ] && [ "$stop_stage" -ge 9 ]; then
  log "Stage 9: first distillation stage from $teacher on $device -> $distill_dir/first (log: $distill_dir/log/train_first.log)"
  train first "$teacher" "$iters" "$lr"
fi

if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 10 ]; then
  log "Stage 10: averaging -> $distill_dir/first/$first_avg"
  average first "$iters"
fi

if [ "$stage" -le 11 ] && [ "$stop_stage" -ge 11 ]; then
  log "Stage 11: second distillation stage on $device -> $distill_dir/second/$second_avg (log: $distill_dir/log/train_second.log)"
  train second "$distill_dir/first/$first_avg" "$iters2" "$lr2"
  average second "$iters2"
fi

if [ "$stage" -le 12 ] && [ "$stop_stage" -ge 12 ]; then
  log "Stage 12: dev losses of teacher and student on $device -> $distill_dir/dev_*.json, $results_md (logs: $distill_dir/log/dev_*.log)"
  for n in 16 4; do  # the teacher at its usual and at the student's number of steps
    dev_loss "teacher$n" "$(dirname "$teacher")" "$(basename "$teacher")" $n --label "teacher (zipvoice)"
  done
  for n in 4 8; do
    dev_loss "student$n" "$distill_dir/second" "$second_avg" $n --model-name zipvoice_distill --label "distilled"
  done
  python3 local/distill_table.py --results-md "$results_md" --key "$key" "$distill_dir/dev_teacher16.json" \
    "$distill_dir/dev_student4.json" "$distill_dir/dev_student8.json" "$distill_dir/dev_teacher4.json"
fi
