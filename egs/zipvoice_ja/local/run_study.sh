#!/usr/bin/env bash
# The fine-tuning trade-off study (run.sh stage 20): pretrain a model on many speakers, fine-tune it
# on two speakers held out of pretraining with each strategy, and measure what every strategy buys
# (fit to the fine-tuned speakers: MCD and log-F0 RMSE against their held-out recordings) and what
# it costs (zero-shot speaker similarity on speakers no model has seen).
#
#   local/run_study.sh                                  # mini corpus, tiny model, default sizes
#   local/run_study.sh --pretrain-iters 2000 --finetune-iters 500 --work-dir exp/study_big
#   local/run_study.sh --pool-tsv data/c/train.tsv,data/c/dev.tsv --test-tsv data/c/test.tsv \
#       --finetune-speakers spkA,spkB --model-config base   # your corpus, the 123 M base model
#
# Run from egs/zipvoice_ja. Every step skips what is already there, so a run resumes where it
# stopped; remove a product (e.g. $work_dir/models/lora) to redo it.
set -euo pipefail

work_dir=exp/study
report_dir=exp/report
results_md=RESULTS.md
pool_tsv=                    # comma-separated corpus TSVs to pretrain/fine-tune from (default: mini corpus)
test_tsv=                    # corpus TSV of the unseen speakers (default: mini corpus test.tsv)
speakers_tsv=                # speaker table with a 'source' column (mini corpus: speakers.tsv)
num_speakers=10              # mini corpus size
sentences_per_speaker=16
seed=0
finetune_speakers=           # comma-separated; default: chosen by local/study_split.py
eval_per_speaker=3
model_config=conf/zipvoice_tiny.json  # 'base': the packaged zipvoice/configs/zipvoice_base.json
tokenizer_scheme=prosody
max_duration=30
num_buckets=4
pretrain_iters=400
pretrain_lr=0.02
finetune_iters=100
finetune_lr=0.005
adapter_lr=0.003
strategies=full,freeze_decoder,freeze_stacks,lora,dora
freeze_stacks=2,3,4
lora_rank=16
lora_alpha=32
avg=4
num_step=16
vocoder_path=
asr_model_dir=
phone_model_dir=             # phone recognizer (shirabe.bin.train_phone_recognizer) for PER; empty: no PER
f0_method=harvest
keep_checkpoints=false       # false: a finished run keeps only its averaged model (saves GBs)
nj=2
use_gpu=true                 # training, synthesis and evaluation jobs ask for a GPU (--gpu 1)
device=auto                  # --device of their binaries: auto | cpu | cuda | cuda:N | mps

help_message="Usage: $0 [options]   (run from egs/zipvoice_ja)
Options (default in parentheses):
  --work-dir DIR                 data, checkpoints, models and syntheses of the study ($work_dir)
  --report-dir DIR               HTML report: index.html with players, table and plot ($report_dir)
  --results-md FILE              Markdown file whose study section is (re)written ($results_md)
  --pool-tsv A[,B]               corpus TSVs of the trainable speakers (mini corpus train+dev)
  --test-tsv FILE                corpus TSV of the unseen zero-shot speakers (mini corpus test)
  --speakers-tsv FILE            speaker table with a 'source' column (mini corpus speakers.tsv)
  --num-speakers / --sentences-per-speaker / --seed   mini corpus ($num_speakers / $sentences_per_speaker / $seed)
  --finetune-speakers A,B        speakers held out of pretraining and fine-tuned on (auto)
  --eval-per-speaker N           held-out utterances per fine-tuning and per unseen speaker ($eval_per_speaker)
  --model-config FILE            model to pretrain, or base: zipvoice/configs/zipvoice_base.json ($model_config)
  --tokenizer-scheme S           prosody | hl | phone | kana ($tokenizer_scheme)
  --max-duration S / --num-buckets N   batching ($max_duration / $num_buckets)
  --pretrain-iters N / --pretrain-lr LR   pretraining batches / Eden base rate ($pretrain_iters / $pretrain_lr)
  --finetune-iters N             fine-tuning batches per strategy ($finetune_iters)
  --finetune-lr LR               fixed rate, ScaledAdam: full and freeze strategies ($finetune_lr)
  --adapter-lr LR                fixed rate, AdamW: LoRA and DoRA ($adapter_lr)
  --strategies LIST              of full, freeze_decoder, freeze_stacks, lora, dora ($strategies)
  --freeze-stacks L              stacks frozen by freeze_stacks ($freeze_stacks)
  --lora-rank / --lora-alpha     adapters ($lora_rank / $lora_alpha)
  --avg N                        checkpoints averaged at the end of each run ($avg)
  --num-step N                   Euler steps at inference ($num_step)
  --vocoder-path DIR             Vocos directory (default: Griffin-Lim)
  --asr-model-dir DIR            local Whisper (Hugging Face format) for CER (none)
  --phone-model-dir DIR          phone recognizer for the phone error rate, PER, with the ground truth's
                                 PER as the ceiling (none: no PER; see docs/phone_recognizer.md)
  --f0-method M                  harvest | crepe ($f0_method)
  --keep-checkpoints BOOL        keep every checkpoint of finished runs ($keep_checkpoints)
  --nj N                         fine-tuning runs, syntheses and evaluations run N at a time ($nj)
  --use-gpu BOOL                 training (\$cuda_cmd), synthesis and evaluation (\$decode_cmd) jobs ask for a GPU ($use_gpu)
  --device DEVICE                auto | cpu | cuda | cuda:N | mps for those jobs; cpu if --use-gpu false ($device)
Steps: 1 corpus, 2 split, 3 features, 4 pretrain, 5 fine-tune, 6 synthesise, 7 evaluate (again where
metrics lack the PER of --phone-model-dir), 8 report.
Logs: \$work_dir/log/."

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (run_study.sh) $*"; }
die() { echo "$0: $*" >&2; exit 2; }
py() { python3 "$@"; }
ngpu=1; [ "$use_gpu" = true ] || ngpu=0
case $device in auto|cpu|mps|cuda|cuda:[0-9]*) ;; *) die "--device $device: expected auto, cpu, cuda, cuda:N or mps" ;; esac
case $use_gpu:$device in false:auto) device=cpu ;; false:cuda*) die "--device $device needs --use-gpu true" ;; esac
[ "$model_config" = base ] &&
  model_config=$(py -c 'import importlib.resources as r; print(r.files("zipvoice") / "configs/zipvoice_base.json")')

lists=$work_dir/lists
models=$work_dir/models
mkdir -p "$work_dir/log" "$models"
study_start=$(date +%s)

# run_parallel FUNC ITEM...: FUNC ITEM for each item, $nj at a time, each logged to $work_dir/log/FUNC.ITEM.log
run_parallel() {
  local f=$1 item pid failed=() pids=() names=()
  shift
  for item in "$@"; do
    "$f" "$item" > "$work_dir/log/$f.$item.log" 2>&1 &
    pids+=($!); names+=("$item")
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do wait -n || true; done
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
  for item in ${failed[@]+"${failed[@]}"}; do
    tail -n 5 "$work_dir/log/$f.$item.log" >&2
    echo "$0: $f $item failed; log: $work_dir/log/$f.$item.log" >&2
  done
  [ ${#failed[@]} -eq 0 ]
}

# train_run EXP_DIR TRAIN_DATA_DIR ITERS [options...]: train_zipvoice as a $cuda_cmd job (log:
# $work_dir/log/train_<EXP_DIR name>.log), then average the last checkpoints
train_run() {
  local exp=$1 data=$2 iters=$3
  shift 3
  local every=$(( iters / (avg + 1) > 0 ? iters / (avg + 1) : 1 ))
  $cuda_cmd --gpu $ngpu "$work_dir/log/train_${exp##*/}.log" \
    python3 -m zipvoice.bin.train_zipvoice --device "$device" --model-config "$model_config" \
      --token-file "$data/tokens.txt" --tokenizer japanese --train-manifest "$data/fbank/custom_cuts_train_tokens.jsonl.gz" \
      --dev-manifest "$data/fbank/custom_cuts_dev_tokens.jsonl.gz" --exp-dir "$exp" --num-iters "$iters" \
      --max-duration "$max_duration" --num-buckets "$num_buckets" --num-workers 0 --drop-last 0 --use-fp16 false \
      --save-every-n "$every" --keep-last-k $((avg + 1)) --average-period 1 --log-interval 20 --seed "$seed" "$@" ||
    return  # (set -e does not apply where the caller tests the status)
  py -m zipvoice.bin.generate_averaged_model --exp-dir "$exp" --iter "$iters" --avg "$avg" || return
  [ "$keep_checkpoints" = true ] || rm -f "$exp"/epoch-*.pt "$exp"/checkpoint-*.pt "$exp"/best-*-loss.pt
}

if [ ! -f "$lists/split.json" ]; then
  if [ -z "$pool_tsv" ]; then
    corpus=$work_dir/corpus/speech
    log "Study step 1: mini corpus ($num_speakers speakers x $sentences_per_speaker sentences) -> $corpus"
    py ../../local/make_mini_corpus.py --output-dir "$work_dir/corpus" --parts speech --seed "$seed" \
      --num-speakers "$num_speakers" --sentences-per-speaker "$sentences_per_speaker" --no-progress true
    pool_tsv=$corpus/train.tsv,$corpus/dev.tsv; test_tsv=$corpus/test.tsv; speakers_tsv=$corpus/speakers.tsv
  fi
  [ -n "$test_tsv" ] || die "--pool-tsv needs --test-tsv (the unseen speakers)"
  log "Study step 2: speakers for pretraining / fine-tuning / zero-shot -> $lists"
  py local/study_split.py --pool ${pool_tsv//,/ } --test "$test_tsv" --out-dir "$lists" \
    --eval-per-speaker "$eval_per_speaker" ${speakers_tsv:+--speakers-tsv "$speakers_tsv"} \
    ${finetune_speakers:+--finetune-speakers "$finetune_speakers"}
fi

log "Study step 3: features and tokens (run.sh stages 0-3)"
for part in pretrain finetune; do
  ./run.sh --stage 0 --stop-stage 3 --dataset custom --data-dir "$work_dir/data_$part" --nj 1 \
    --train-tsv "$lists/${part}_train.tsv" --dev-tsv "$lists/${part}_dev.tsv" \
    --tokenizer-scheme "$tokenizer_scheme" > "$work_dir/log/data_$part.log" 2>&1 ||
    { tail -n 5 "$work_dir/log/data_$part.log" >&2; die "data preparation failed ($work_dir/log/data_$part.log)"; }
done
cmp -s "$work_dir/data_pretrain/tokens.txt" "$work_dir/data_finetune/tokens.txt" ||
  die "the token tables of the two data sets differ"

# make_model_dir DIR CHECKPOINT: a model directory (model.pt, model.json, tokens.txt)
make_model_dir() {
  mkdir -p "$1"
  cp "$2" "$1/model.pt.tmp" && mv "$1/model.pt.tmp" "$1/model.pt"
  cp "$model_config" "$1/model.json"
  cp "$work_dir/data_pretrain/tokens.txt" "$1/tokens.txt"
}

pre_exp=$work_dir/exp/pretrain
if [ ! -f "$models/pretrained/model.pt" ]; then
  log "Study step 4: pretraining $pretrain_iters batches -> $pre_exp"
  s=$(date +%s)
  train_run "$pre_exp" "$work_dir/data_pretrain" "$pretrain_iters" --base-lr "$pretrain_lr" \
    > "$work_dir/log/pretrain.log" 2>&1 ||
    { tail -n 5 "$work_dir/log/pretrain.log" >&2; die "pretraining failed ($work_dir/log/pretrain.log)"; }
  echo $(( $(date +%s) - s )) > "$pre_exp/train_seconds"
  make_model_dir "$models/pretrained" "$pre_exp/iter-$pretrain_iters-avg-$avg.pt"
fi

finetune() {
  local s=$1 exp=$work_dir/exp/ft_$1 opts=() lr=$finetune_lr
  [ -f "$models/$s/model.pt" ] && return 0
  case $s in
    full) ;;
    freeze_decoder) opts=(--freeze-fm-decoder 1) ;;
    freeze_stacks) opts=(--freeze-fm-decoder-stacks "$freeze_stacks") ;;
    lora|dora) opts=(--use-$s 1 --lora-rank "$lora_rank" --lora-alpha "$lora_alpha" --optimizer adamw); lr=$adapter_lr ;;
    *) echo "unknown strategy $s" >&2; return 2 ;;
  esac
  rm -rf "$exp"
  local start=$(date +%s)
  train_run "$exp" "$work_dir/data_finetune" "$finetune_iters" --finetune 1 \
    --checkpoint "$models/pretrained/model.pt" --base-lr "$lr" "${opts[@]}"
  echo $(( $(date +%s) - start )) > "$exp/train_seconds"
  local averaged=$exp/iter-$finetune_iters-avg-$avg.pt
  if [ "$s" = lora ] || [ "$s" = dora ]; then
    py -m zipvoice.bin.merge_lora --model-dir "$models/pretrained" --adapter-checkpoint "$averaged" \
      --token-file "$work_dir/data_pretrain/tokens.txt" --output-dir "$models/$s"
  else
    make_model_dir "$models/$s" "$averaged"
  fi
}
log "Study step 5: fine-tuning on $(py -c "import json,sys; print(', '.join(json.load(open(sys.argv[1]))['finetune_speakers']))" "$lists/split.json") with: ${strategies//,/ } ($nj at a time)"
run_parallel finetune ${strategies//,/ }

for set in finetune_eval zero_shot; do
  [ -f "$lists/$set/test_list.tsv" ] ||
    py local/make_zero_shot_list.py --tsv "$lists/$set.tsv" --output "$lists/$set/test_list.tsv" \
      --ground-truth "$lists/$set/ground_truth.tsv"
done
systems="pretrained ${strategies//,/ }"

synthesise() {
  local sys=$1 set out
  for set in finetune_eval zero_shot; do
    out=$work_dir/infer/$sys/$set
    [ -f "$out/.done" ] && continue
    $decode_cmd --gpu $ngpu "$work_dir/log/infer_$sys.$set.log" \
      python3 -m zipvoice.bin.infer_zipvoice --device "$device" --model-dir "$models/$sys" --tokenizer japanese \
        --scheme "$tokenizer_scheme" --test-list "$lists/$set/test_list.tsv" --res-dir "$out" --num-step "$num_step" \
        --seed "$seed" ${vocoder_path:+--vocoder-path "$vocoder_path"}
    touch "$out/.done"
  done
  [ -f "$models/$sys/dev_loss.json" ] ||
    $decode_cmd --gpu $ngpu "$work_dir/log/dev_loss_$sys.log" \
      python3 -m zipvoice.bin.compute_dev_loss --device "$device" --model-dir "$models/$sys" --label "$sys" \
        --output "$models/$sys/dev_loss.json" --dev-manifest "$work_dir/data_finetune/fbank/custom_cuts_dev_tokens.jsonl.gz"
}
log "Study step 6: synthesis for the fine-tuned and the unseen speakers: $systems"
run_parallel synthesise $systems

# has_per METRICS: the metrics were computed with --phone-model-dir $phone_model_dir
has_per() {
  py -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])).get("settings", {}).get("phone_model_dir") != sys.argv[2])' \
    "$1" "$phone_model_dir"
}
evaluate() {
  local sys=$1 set metrics
  for set in finetune_eval zero_shot; do
    metrics=$work_dir/infer/$sys/$set/metrics.json
    [ -f "$metrics" ] && { [ -z "$phone_model_dir" ] || has_per "$metrics"; } && continue
    $decode_cmd --gpu $ngpu "$work_dir/log/evaluate_$sys.$set.log" \
      python3 -m zipvoice.bin.evaluate --device "$device" --test-list "$lists/$set/test_list.tsv" \
        --wav-dir "$work_dir/infer/$sys/$set" --system "$sys" --output "$metrics" \
        --f0-method "$f0_method" ${asr_model_dir:+--asr-model-dir "$asr_model_dir"} \
        ${phone_model_dir:+--phone-model-dir "$phone_model_dir"} || return
  done
}
log "Study step 7: evaluation${phone_model_dir:+ (PER by $phone_model_dir)}"
run_parallel evaluate $systems

log "Study step 8: RESULTS table, plot and HTML report"
py local/study_report.py --work-dir "$work_dir" --systems "${systems// /,}" --results-md "$results_md" \
  --report-dir "$report_dir" --finetune-iters "$finetune_iters" --pretrain-iters "$pretrain_iters" \
  --elapsed $(( $(date +%s) - study_start ))
log "Study done in $(( $(date +%s) - study_start )) s: $results_md, $report_dir/index.html"
