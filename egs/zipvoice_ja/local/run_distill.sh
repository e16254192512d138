#!/usr/bin/env bash
# Distil a trained ZipVoice into ZipVoiceDistill (run.sh stages 9-12), as upstream does in two
# stages: 9-10 train the student against the fixed teacher and average it; 11-12 train it further
# against an EMA copy of itself, average, and compare dev sampling losses of teacher and student
# in a table of --results-md.
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

help_message="Usage: $0 [options]   (run from egs/zipvoice_ja)
Options (default in parentheses):
  --stage N / --stop-stage N     9-10 first stage, 11-12 second stage and the comparison ($stage / $stop_stage)
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
  --key KEY                      section key of the table in --results-md ($key)"

. ./path.sh
. utils/parse_options.sh
for v in teacher train_manifest dev_manifest distill_dir; do
  [ -n "${!v}" ] || { echo "$0: --${v//_/-} is required (see --help)" >&2; exit 2; }
done
[ -f "$teacher" ] || { echo "$0: $teacher: no such teacher checkpoint" >&2; exit 2; }

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (run_distill.sh:${BASH_LINENO[0]}) $*"; }
first_avg=iter-$iters-avg-$avg.pt
second_avg=iter-$iters2-avg-$avg.pt

train_stage() {  # train_stage NAME TEACHER ITERS LR: train_zipvoice_distill, then average
  python3 -m zipvoice.bin.train_zipvoice_distill --distill-stage "$1" --teacher-model "$2" \
    --exp-dir "$distill_dir/$1" --train-manifest "$train_manifest" --dev-manifest "$dev_manifest" \
    --num-iters "$3" --base-lr "$4" --save-every-n $(( $3 / (avg + 1) > 0 ? $3 / (avg + 1) : 1 )) \
    --max-duration "$max_duration" ${quadratic_duration:+--quadratic-duration "$quadratic_duration"} \
    --average-period 1 --drop-last 0 --world-size "$world_size" \
    --use-fp16 "$([ "$use_fp16" = true ] && echo 1 || echo 0)"
  python3 -m zipvoice.bin.generate_averaged_model --exp-dir "$distill_dir/$1" --iter "$3" --avg "$avg"
}

if [ "$stage" -le 10 ] && [ "$stop_stage" -ge 9 ]; then
  log "Stages 9-10: first distillation stage from $teacher -> $distill_dir/first/$first_avg"
  train_stage first "$teacher" "$iters" "$lr"
fi

if [ "$stage" -le 12 ] && [ "$stop_stage" -ge 11 ]; then
  log "Stages 11-12: second distillation stage -> $distill_dir/second/$second_avg; dev losses -> $results_md"
  train_stage second "$distill_dir/first/$first_avg" "$iters2" "$lr2"
  for n in 16 4; do  # the teacher at its usual and at the student's number of steps
    python3 -m zipvoice.bin.compute_dev_loss --model-dir "$(dirname "$teacher")" --checkpoint-name "$(basename "$teacher")" \
      --dev-manifest "$dev_manifest" --num-step $n --label "teacher (zipvoice)" \
      --out "$distill_dir/dev_teacher$n.json" > /dev/null
  done
  for n in 4 8; do
    python3 -m zipvoice.bin.compute_dev_loss --model-dir "$distill_dir/second" --checkpoint-name "$second_avg" \
      --dev-manifest "$dev_manifest" --model-name zipvoice_distill --num-step $n --label "distilled" \
      --out "$distill_dir/dev_student$n.json" > /dev/null
  done
  python3 local/distill_table.py --results-md "$results_md" --key "$key" "$distill_dir/dev_teacher16.json" \
    "$distill_dir/dev_student4.json" "$distill_dir/dev_student8.json" "$distill_dir/dev_teacher4.json"
fi
