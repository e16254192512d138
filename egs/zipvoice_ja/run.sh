#!/usr/bin/env bash
# Japanese zero-shot TTS with ZipVoice: corpus -> manifests -> features -> tokens -> train
# -> average -> zero-shot inference. Runs on the embedded mini corpus by default.
#
#   ./run.sh                                    # every stage, mini corpus, tiny model
#   ./run.sh --stage 2 --stop-stage 4           # resume at the features
#   ./run.sh --dataset custom --train-tsv a.tsv --dev-tsv b.tsv --model-config base
#   ./run.sh --finetune-from download/zipvoice --use-lora true     # adapt a released model
#   cmd_backend=slurm ./run.sh --nj 32          # heavy steps as cluster jobs (see cmd.sh)
#   ./run.sh --use-gpu false                    # CPU only: no GPU requested, --device cpu
#   ./run.sh --stage 8 --stop-stage 12          # evaluate, then distil the averaged model
#   ./run.sh --stage 20                         # the fine-tuning trade-off study (local/run_study.sh)
#
# Finished work is kept: stages skip outputs that already exist, so removing a stage's
# outputs (or exp/) and running again redoes just that.
set -euo pipefail

stage=0
stop_stage=                  # default: 6, or --stage when that is later
dataset=mini                 # mini | moe_speech_plus | custom
data_dir=data                # everything this recipe prepares goes here
corpus_dir=                  # moe_speech_plus: the downloaded corpus
train_tsv=                   # custom: {utt_id}\t{text}\t{wav}[\t{start}\t{end}]
dev_tsv=
test_tsv=                    # custom: optional; zero-shot prompts/texts for stage 6
dev_ratio=0.05               # moe_speech_plus: share of each speaker's clips kept for dev
seed=0                       # mini corpus seed
num_speakers=10; sentences_per_speaker=30   # mini corpus size
nj=1                         # parallel jobs for features (split of the manifests)
model_config=conf/zipvoice_tiny.json  # 'base': the packaged zipvoice/configs/zipvoice_base.json (123 M)
tokenizer_scheme=prosody     # prosody | hl | phone | kana
exp_dir=exp/zipvoice_ja
num_epochs=12
num_iters=0                  # > 0: train for this many batches instead of epochs
max_duration=60              # seconds of audio per batch
quadratic_duration=          # e.g. 15: long cuts count more (attention is quadratic)
base_lr=                     # default: 0.02 (ScaledAdam from scratch), 1e-4 fine-tuning, 1e-3 adapters (AdamW)
lr_hours=0                   # > 0: Eden decays the rate over this many hours of audio seen, not over epochs
save_every_n=                # checkpoint-B.pt every N batches (default: the trainer's, 5000)
num_workers=2                # DataLoader workers per training process
average_period=              # model averaging period in batches (default: 10 on mini, else 200)
world_size=1
use_fp16=false
finetune_from=               # a model directory (model.json, tokens.txt, model.pt) to adapt
freeze_fm_decoder=false
freeze_fm_decoder_stacks=    # e.g. "2,3,4" (0-based stacks of the FM decoder)
use_lora=false; use_dora=false
lora_rank=16; lora_alpha=32; lora_dropout=0.05
avg=4                        # epochs (or checkpoints with --num-iters) to average
vocoder_path=                # Vocos directory; default: Griffin-Lim (with a warning)
num_step=16                  # Euler steps at inference
infer_per_speaker=10         # stage 6: at most this many prompt/text pairs per test speaker (0: all)
results_md=RESULTS.md        # stages 8, 12, 20 write their tables here
asr_model_dir=               # stage 8: local Whisper (Hugging Face format) for CER
phone_model_dir=exp/phone_recognizer  # stage 8: phone recognizer for PER, trained on the train speakers if missing
distill_iters=200; distill2_iters=50      # stages 9-12: first / second distillation stage batches
distill_lr=0.0005; distill2_lr=0.0001
distill_avg=2
study_opts=                  # stage 20: options for local/run_study.sh, e.g. "--pretrain-iters 2000"
use_gpu=true                 # training, inference and evaluation jobs ask for a GPU (--gpu 1)
device=auto                  # --device of their binaries: auto | cpu | cuda | cuda:N | mps

help_message="Usage: $0 [options]
Options (default in parentheses):
  --stage N / --stop-stage N     first / last stage to run ($stage / 6, or --stage when later)
  --dataset NAME                 mini | moe_speech_plus | custom ($dataset)
  --data-dir DIR                 where prepared data goes ($data_dir)
  --corpus-dir DIR               moe_speech_plus: the downloaded corpus ($corpus_dir)
  --train-tsv / --dev-tsv FILE   custom: corpus TSVs ({utt_id}\\t{text}\\t{wav}[\\t{start}\\t{end}])
  --test-tsv FILE                custom: held-out speakers for zero-shot inference (optional)
  --dev-ratio R                  moe_speech_plus: dev share per speaker ($dev_ratio)
  --seed / --num-speakers / --sentences-per-speaker   mini corpus ($seed / $num_speakers / $sentences_per_speaker)
  --nj N                         feature jobs over manifest parts ($nj)
  --model-config FILE            model.json to train, or base: zipvoice/configs/zipvoice_base.json ($model_config)
  --tokenizer-scheme S           prosody | hl | phone | kana ($tokenizer_scheme)
  --exp-dir DIR                  training directory ($exp_dir)
  --num-epochs N / --num-iters N epochs, or batches if > 0 ($num_epochs / $num_iters)
  --max-duration S               seconds of audio per batch ($max_duration)
  --quadratic-duration S         lhotse's quadratic duration for batching (off)
  --base-lr LR                   learning rate (0.02 from scratch; 1e-4 fine-tuning; 1e-3 LoRA/DoRA)
  --lr-hours H                   > 0: Eden's decay over hours of audio seen instead of epochs ($lr_hours)
  --save-every-n N               batches between checkpoint-B.pt files (the trainer's default, 5000)
  --num-workers N                data loader workers per training process ($num_workers)
  --average-period N             batches between model_avg updates (10 on mini, else 200)
  --world-size N                 DDP processes ($world_size)
  --use-fp16 BOOL                fp16 autocast on CUDA ($use_fp16)
  --finetune-from DIR            adapt this model (model.json, tokens.txt, model.pt) (none)
  --freeze-fm-decoder BOOL       train only the text side ($freeze_fm_decoder)
  --freeze-fm-decoder-stacks L   freeze these FM decoder stacks, e.g. 2,3,4 (none)
  --use-lora / --use-dora BOOL   adapters on the FM decoder ($use_lora / $use_dora)
  --lora-rank / --lora-alpha / --lora-dropout   adapter settings ($lora_rank / $lora_alpha / $lora_dropout)
  --avg N                        epochs or checkpoints to average ($avg)
  --vocoder-path DIR             Vocos for stage 6 (Griffin-Lim)
  --num-step N                   Euler steps in stage 6 ($num_step)
  --infer-per-speaker N          stage 6: prompt/text pairs per test speaker, 0 = all ($infer_per_speaker)
  --results-md FILE              tables of stages 8, 12 and 20 ($results_md)
  --asr-model-dir DIR            stage 8: Whisper directory (Hugging Face format) for CER (none)
  --phone-model-dir DIR          stage 8: phone recognizer for PER, trained there if missing; empty: no PER ($phone_model_dir)
  --distill-iters / --distill2-iters N   distillation batches, stages 9 / 11 ($distill_iters / $distill2_iters)
  --distill-lr / --distill2-lr LR        their fixed learning rates ($distill_lr / $distill2_lr)
  --distill-avg N                checkpoints averaged after each distillation stage ($distill_avg)
  --study-opts \"...\"            stage 20: options of local/run_study.sh (see its --help)
  --use-gpu BOOL                 training, inference and evaluation jobs ask for a GPU ($use_gpu)
  --device DEVICE                auto | cpu | cuda | cuda:N | mps for those jobs; cpu if --use-gpu false ($device)
Stages:
  0 corpus        -> \$data_dir/\$dataset/{train,dev,test}.tsv
  1 manifests     -> \$data_dir/manifests/\${dataset}_cuts_{train,dev}.jsonl.gz (+ rejects lists)
  2 features      -> \$data_dir/fbank/\${dataset}_cuts_{train,dev}.jsonl.gz (Vocos fbank)
  3 tokens        -> \$data_dir/tokens.txt, \$data_dir/fbank/\${dataset}_cuts_{train,dev}_tokens.jsonl.gz
  4 train         -> \$exp_dir/epoch-*.pt, checkpoint-*.pt, tensorboard/
  5 average       -> \$exp_dir/epoch-E-avg-N.pt (or iter-I-avg-N.pt; merged/ for adapters)
  6 infer         -> \$exp_dir/infer/*.wav: test speakers' prompts, unseen in training
  7 onnx          -> \$exp_dir/onnx/*.onnx (fp32, int8); stage 6's list with onnxruntime in \$exp_dir/infer_onnx/
  8 evaluate      -> \$phone_model_dir (trained once); \$exp_dir/infer/<model>/metrics.json, spectrogram.png;
                     table in \$results_md
  9-12 distil     -> \$exp_dir/distill/{first,second}/ (local/run_distill.sh); dev losses in \$results_md
  20 study        -> local/run_study.sh, run alone (--stage 20): \$results_md, exp/report/index.html"

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
[ -n "$stop_stage" ] || stop_stage=$(( stage > 6 ? stage : 6 ))

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (run.sh:${BASH_LINENO[0]}) $*"; }
py() { python3 "$@"; }

# Jobs (cmd.sh): training as $cuda_cmd, inference and evaluation as $decode_cmd; logs in $exp_dir/log/.
ngpu=1; [ "$use_gpu" = true ] || ngpu=0
case $device in auto|cpu|mps|cuda|cuda:[0-9]*) ;;
  *) echo "$0: --device $device: expected auto, cpu, cuda, cuda:N or mps" >&2; exit 2 ;; esac
case $use_gpu:$device in false:auto) device=cpu ;;
  false:cuda*) echo "$0: --device $device needs --use-gpu true" >&2; exit 2 ;; esac
[ "$model_config" = base ] &&
  model_config=$(py -c 'import importlib.resources as r; print(r.files("zipvoice") / "configs/zipvoice_base.json")')
corpus=$data_dir/$dataset
manifests=$data_dir/manifests
fbank=$data_dir/fbank
tokens=$data_dir/tokens.txt
[ -n "$average_period" ] || { [ "$dataset" = mini ] && average_period=10 || average_period=200; }
if [ -n "$finetune_from" ]; then
  for f in model.json tokens.txt model.pt; do
    [ -f "$finetune_from/$f" ] || { echo "$0: --finetune-from $finetune_from: no $f there" >&2; exit 2; }
  done
  model_config=$finetune_from/model.json
fi
# ScaledAdam scales updates by each tensor's size, so adapters that start at zero barely move: AdamW.
adapters=false; optimizer=scaledadam
{ [ "$use_lora" = true ] || [ "$use_dora" = true ]; } && { adapters=true; optimizer=adamw; }
if [ -z "$base_lr" ]; then
  if [ "$adapters" = true ]; then base_lr=1e-3; elif [ -n "$finetune_from" ]; then base_lr=1e-4; else base_lr=0.02; fi
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: corpus ($dataset) -> $corpus"
  case $dataset in
    mini)
      py ../../local/make_mini_corpus.py --output-dir "$corpus" --parts speech --seed "$seed" \
        --num-speakers "$num_speakers" --sentences-per-speaker "$sentences_per_speaker"
      for s in train dev test; do ln -sf "speech/$s.tsv" "$corpus/$s.tsv"; done ;;
    moe_speech_plus)
      [ -n "$corpus_dir" ] || { echo "$0: --dataset moe_speech_plus needs --corpus-dir" >&2; exit 2; }
      py ../../local/prepare_moe_speech_plus.py --corpus-dir "$corpus_dir" --output-dir "$corpus" --dev-ratio "$dev_ratio" ;;
    custom)
      [ -n "$train_tsv" ] && [ -n "$dev_tsv" ] || { echo "$0: --dataset custom needs --train-tsv and --dev-tsv" >&2; exit 2; }
      mkdir -p "$corpus"
      for pair in "train:$train_tsv" "dev:$dev_tsv" ${test_tsv:+"test:$test_tsv"}; do
        src=${pair#*:}
        [ -f "$src" ] || { echo "$0: $src: no such file" >&2; exit 2; }
        ln -sf "$(cd "$(dirname "$src")" && pwd)/$(basename "$src")" "$corpus/${pair%%:*}.tsv"
      done ;;
    *) echo "$0: --dataset $dataset is not supported (choose: mini, moe_speech_plus, custom)" >&2; exit 2 ;;
  esac
  for s in train dev test; do [ -f "$corpus/$s.tsv" ] && log "  $corpus/$s.tsv: $(wc -l < "$corpus/$s.tsv") utterances"; done
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: lhotse manifests -> $manifests"
  for s in train dev; do
    out=$manifests/${dataset}_cuts_$s.jsonl.gz
    if [ -f "$out" ]; then log "  $out exists, skipping"; continue; fi
    py -m zipvoice.bin.prepare_dataset --input "$corpus/$s.tsv" --dataset "$dataset" --subset "$s" \
      --output-dir "$manifests" --language ja --num-jobs "$nj"
  done
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: Vocos fbank -> $fbank ($nj job(s) per subset)"
  for s in train dev; do
    out=$fbank/${dataset}_cuts_$s.jsonl.gz
    if [ -f "$out" ]; then log "  $out exists, skipping"; continue; fi
    if [ "$nj" -le 1 ]; then
      py -m zipvoice.bin.compute_fbank --manifest-dir "$manifests" --output-dir "$fbank" --dataset "$dataset" --subset "$s"
      continue
    fi
    py -m shirabe.bin.manifests split --num-parts "$nj" "$manifests/${dataset}_cuts_$s.jsonl.gz" "$manifests/split$nj"
    $train_cmd JOB=1:"$nj" "$fbank/log/fbank_$s.JOB.log" \
      python3 -m zipvoice.bin.compute_fbank --manifest-dir "$manifests" --output-dir "$fbank" \
        --dataset "$dataset" --subset "$s" --num-parts "$nj" --part JOB
    py -m shirabe.bin.manifests combine "$out" "$fbank/split$nj/${dataset}_cuts_$s".*.jsonl.gz
  done
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: tokens ($tokenizer_scheme) -> $tokens"
  [ -f "$tokens" ] || py -m zipvoice.bin.prepare_token_file --tokenizer japanese --scheme "$tokenizer_scheme" \
    ${finetune_from:+--extend "$finetune_from/tokens.txt"} --output "$tokens"
  for s in train dev; do
    out=$fbank/${dataset}_cuts_${s}_tokens.jsonl.gz
    if [ -f "$out" ]; then log "  $out exists, skipping"; continue; fi
    py -m zipvoice.bin.prepare_tokens --tokenizer japanese --scheme "$tokenizer_scheme" --token-file "$tokens" \
      --num-jobs "$nj" --input "$fbank/${dataset}_cuts_$s.jsonl.gz" --output "$out"
  done
  log "  $(wc -l < "$tokens") tokens in $tokens"
fi

# The judge of stages 8 and 20: a phone recognizer trained once on the corpus's train speakers.
train_phone_recognizer() {
  [ -z "$phone_model_dir" ] || [ -f "$phone_model_dir/model.pt" ] && return 0
  if [ ! -f "$corpus/train.tsv" ]; then
    log "  no $corpus/train.tsv to train the phone recognizer on (run stage 0): no PER"; phone_model_dir=; return 0
  fi
  log "  training the phone recognizer on $corpus/train.tsv -> $phone_model_dir (log: $phone_model_dir/log/train.log)"
  $cuda_cmd --gpu $ngpu "$phone_model_dir/log/train.log" \
    python3 -m shirabe.bin.train_phone_recognizer --device "$device" --corpus-dir "$corpus" --exp-dir "$phone_model_dir"
}

if [ "$num_iters" -gt 0 ]; then last=$exp_dir/checkpoint-$num_iters.pt; else last=$exp_dir/epoch-$num_epochs.pt; fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: training on $device -> $last (log: $exp_dir/log/train.log)"
  ft_opts=(--freeze-fm-decoder "$freeze_fm_decoder" --use-lora "$use_lora" --use-dora "$use_dora")
  [ -n "$finetune_from" ] && ft_opts+=(--checkpoint "$finetune_from/model.pt" --finetune true)
  [ -n "$freeze_fm_decoder_stacks" ] && ft_opts+=(--freeze-fm-decoder-stacks "$freeze_fm_decoder_stacks")
  [ "$adapters" = true ] && ft_opts+=(--lora-rank "$lora_rank" --lora-alpha "$lora_alpha" --lora-dropout "$lora_dropout")
  if [ -f "$last" ]; then log "  $last exists, skipping"; else
    $cuda_cmd --gpu $((ngpu * world_size)) "$exp_dir/log/train.log" \
      python3 -m zipvoice.bin.train_zipvoice --device "$device" --world-size "$world_size" --use-fp16 "$use_fp16" \
        --model-config "$model_config" --token-file "$tokens" --tokenizer japanese \
        --train-manifest "$fbank/${dataset}_cuts_train_tokens.jsonl.gz" \
        --dev-manifest "$fbank/${dataset}_cuts_dev_tokens.jsonl.gz" \
        --exp-dir "$exp_dir" --num-epochs "$num_epochs" --num-iters "$num_iters" \
        --max-duration "$max_duration" ${quadratic_duration:+--quadratic-duration "$quadratic_duration"} \
        --optimizer "$optimizer" --base-lr "$base_lr" --lr-hours "$lr_hours" --average-period "$average_period" \
        ${save_every_n:+--save-every-n "$save_every_n"} \
        --num-workers "$num_workers" "${ft_opts[@]}"
  fi
fi

if [ "$num_iters" -gt 0 ]; then avg_name=iter-$num_iters-avg-$avg; avg_opts=(--iter "$num_iters")
else avg_name=epoch-$num_epochs-avg-$avg; avg_opts=(--epoch "$num_epochs"); fi
model_dir=$exp_dir; checkpoint=$avg_name.pt
[ "$adapters" = true ] && { model_dir=$exp_dir/merged-$avg_name; checkpoint=model.pt; }

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: averaging ${avg_opts[*]} --avg $avg -> $exp_dir/$avg_name.pt"
  py -m zipvoice.bin.generate_averaged_model --exp-dir "$exp_dir" "${avg_opts[@]}" --avg "$avg"
  if [ "$adapters" = true ]; then
    log "  merging the adapters into $finetune_from -> $model_dir"
    py -m zipvoice.bin.merge_lora --model-dir "$finetune_from" --adapter-checkpoint "$exp_dir/$avg_name.pt" \
      --token-file "$tokens" --output-dir "$model_dir"
  fi
fi

res=$exp_dir/infer/$avg_name
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "Stage 6: zero-shot inference of the test speakers on $device -> $res (log: $exp_dir/log/infer-$avg_name.log)"
  [ -f "$corpus/test.tsv" ] || { echo "$0: $corpus/test.tsv: no test speakers to synthesise" >&2; exit 2; }
  py local/make_zero_shot_list.py --tsv "$corpus/test.tsv" --output "$res/test_list.tsv" \
    --ground-truth "$res/ground_truth.tsv" --max-per-speaker "$infer_per_speaker"
  $decode_cmd --gpu $ngpu "$exp_dir/log/infer-$avg_name.log" \
    python3 -m zipvoice.bin.infer_zipvoice --device "$device" --model-name zipvoice --model-dir "$model_dir" \
      --checkpoint-name "$checkpoint" --token-file "$tokens" --tokenizer japanese --scheme "$tokenizer_scheme" \
      --test-list "$res/test_list.tsv" --res-dir "$res" --num-step "$num_step" ${vocoder_path:+--vocoder-path "$vocoder_path"}
  log "  $(find "$res" -name '*.wav' | wc -l) utterances in $res"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  onnx_dir=$exp_dir/onnx; onnx_res=$exp_dir/infer_onnx/$avg_name
  log "Stage 7: ONNX export (fp32 + int8) -> $onnx_dir; onnxruntime synthesis -> $onnx_res (logs: $exp_dir/log)"
  $decode_cmd "$exp_dir/log/onnx_export.log" \
    python3 -m zipvoice.bin.onnx_export --model-name zipvoice --model-dir "$model_dir" --checkpoint-name "$checkpoint" \
      --token-file "$tokens" --onnx-model-dir "$onnx_dir" --int8 1 ${vocoder_path:+--vocoder-path "$vocoder_path"}
  $decode_cmd "$exp_dir/log/infer_onnx-$avg_name.log" \
    python3 -m zipvoice.bin.infer_zipvoice_onnx --onnx-model-dir "$onnx_dir" --onnx-int8 1 --tokenizer japanese \
      --scheme "$tokenizer_scheme" --test-list "$res/test_list.tsv" --res-dir "$onnx_res" \
      --num-step "$num_step" ${vocoder_path:+--vocoder-path "$vocoder_path"}
  log "  $(find "$onnx_res" -name '*.wav' | wc -l) utterances synthesised with onnxruntime in $onnx_res"
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  log "Stage 8: evaluation of $res on $device (log: $exp_dir/log/evaluate-$avg_name.log)"
  train_phone_recognizer
  $decode_cmd --gpu $ngpu "$exp_dir/log/evaluate-$avg_name.log" \
    python3 -m zipvoice.bin.evaluate --device "$device" --test-list "$res/test_list.tsv" --wav-dir "$res" \
      --output "$res/metrics.json" --system "$(basename "$exp_dir")/$avg_name" --results-md "$results_md" \
      ${asr_model_dir:+--asr-model-dir "$asr_model_dir"} ${phone_model_dir:+--phone-model-dir "$phone_model_dir"}
  first=$(head -n 1 "$res/ground_truth.tsv")
  py -m shirabe.bin.plot_spectrograms --wav "${first#*$'\t'}" --label "recording" \
    --wav "$res/${first%%$'\t'*}.wav" --label "synthesis ($avg_name)" --title "${first%%$'\t'*}" --output "$res/spectrogram.png"
  log "  $res/metrics.json; mean metrics in $results_md; spectrogram of the first sentence: $res/spectrogram.png"
fi

if [ "$stage" -le 12 ] && [ "$stop_stage" -ge 9 ]; then
  log "Stages 9-12: distillation of $model_dir/$checkpoint -> $exp_dir/distill (local/run_distill.sh)"
  local/run_distill.sh --stage "$(( stage > 9 ? stage : 9 ))" --stop-stage "$(( stop_stage < 12 ? stop_stage : 12 ))" \
    --teacher "$model_dir/$checkpoint" --distill-dir "$exp_dir/distill" \
    --train-manifest "$fbank/${dataset}_cuts_train_tokens.jsonl.gz" --dev-manifest "$fbank/${dataset}_cuts_dev_tokens.jsonl.gz" \
    --iters "$distill_iters" --iters2 "$distill2_iters" --lr "$distill_lr" --lr2 "$distill2_lr" --avg "$distill_avg" \
    --max-duration "$max_duration" ${quadratic_duration:+--quadratic-duration "$quadratic_duration"} \
    --world-size "$world_size" --use-fp16 "$use_fp16" --results-md "$results_md" --key "distill:$exp_dir" \
    --use-gpu "$use_gpu" --device "$device"
fi

if [ "$stage" -le 20 ] && [ "$stop_stage" -ge 20 ]; then
  log "Stage 20: fine-tuning trade-off study (local/run_study.sh $study_opts)"
  train_phone_recognizer
  # shellcheck disable=SC2086
  local/run_study.sh --model-config "$model_config" --tokenizer-scheme "$tokenizer_scheme" --results-md "$results_md" \
    --use-gpu "$use_gpu" --device "$device" --num-step "$num_step" ${vocoder_path:+--vocoder-path "$vocoder_path"} \
    ${asr_model_dir:+--asr-model-dir "$asr_model_dir"} ${phone_model_dir:+--phone-model-dir "$phone_model_dir"} $study_opts
fi

log "Done: stages $stage..$stop_stage."
if [ "$stop_stage" -ge 6 ] && [ -d "$res" ]; then
  log "Synthesized audio: $res/*.wav"
  log "Averaged model:    $model_dir/$checkpoint (model.json, tokens.txt beside it)"
fi
if [ "$stop_stage" -ge 8 ] && [ -f "$res/spectrogram.png" ]; then
  log "Spectrogram:       $res/spectrogram.png (first test sentence: recording above, synthesis below)"
  per=$(grep -o 'PER [0-9.]* % (ground truth [0-9.]* %)' "$exp_dir/log/evaluate-$avg_name.log" | tail -n 1 || true)
  if [ -n "$per" ]; then log "Phone error rate of the synthesized test sentences: $per"; fi
fi
