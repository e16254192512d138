#!/usr/bin/env bash
# Singing voice conversion with SeedSVC (Seed-VC V2 CFM + frame-level F0 cross-attention).
#
# Runs on the embedded mini corpus by default: several synthetic singers sing the same
# songs, so every conversion of a test song has a parallel ground truth. You can remove
# data/ and exp/ and run again; finished stages are skipped.
#
#   ./run.sh                            # all stages, F0 model and the no-F0 baseline
#   ./run.sh --stage 5 --stop-stage 6   # convert and evaluate again
#   cmd_backend=slurm ./run.sh          # training and conversion as cluster jobs (see cmd.sh)
#   ./run.sh --use-gpu false            # CPU only: no GPU requested, --device cpu
set -euo pipefail

stage=0
stop_stage=100
dataset=mini              # mini (embedded, generated offline)
data_dir=data
exp_dir=exp
seed=0
num_songs=6               # mini corpus: songs, each sung by every singer
num_train_songs=4         #   the rest are test songs
singers=sinsy_f001,hts_mei,hts_mei_low,kokoro_jm_kumo
train_pitch_shifts=-12,12 # WORLD re-pitched copies of the training songs (semitones; '' = none)
pairs=sinsy_f001:kokoro_jm_kumo:-12,kokoro_jm_kumo:hts_mei:12   # SOURCE:TARGET:SHIFT conversions
max_source_seconds=10     # convert this long an excerpt of each test song (0: whole songs)
model_config=conf/seedsvc_mini.yaml
v2_checkpoint=            # released V2 cfm (cfm_small.pth); mini: trained in stage 3 (phase 0)
v1_f0_checkpoint=         # V1 singing checkpoint with the F0 embedding; mini: a seeded random table
content_extractor=phone   # phone (trained in stage 2) or astral (give --content-checkpoint and --ssl-model)
content_checkpoint=
ssl_model=                # astral: local facebook/hubert-large-ll60k directory
style_encoder=campplus    # campplus or melstats
f0_method=harvest         # harvest, crepe or rmvpe (give --rmvpe-model)
rmvpe_model=
vocoder_path=             # BigVGAN-v2 22 kHz directory; default Griffin-Lim
phase2=false              # stage 4: also unfreeze the DiT
compare_no_f0=true        # also train and score the same recipe without F0
no_f0=false               # only the no-F0 variant
diffusion_steps=          # default: the config's
content_steps=300         # phone classifier training steps
phase0_steps=             # training steps per phase (default: the config's)
phase1_steps=
phase2_steps=
results=RESULTS.md        # where stage 6 writes the results
phone_model_dir=          # phone recognizer (shirabe.bin.train_phone_recognizer): PER in stage 6; empty: no PER
use_gpu=true              # training, conversion and evaluation jobs ask for a GPU (--gpu 1)
device=auto               # --device of their binaries: auto | cpu | cuda | cuda:N | mps

help_message="Usage: $0 [options]
  --stage N / --stop-stage N      stages to run (default: $stage..$stop_stage)
  --dataset NAME                  corpus: mini (default: $dataset)
  --data-dir DIR / --exp-dir DIR  prepared data / experiments (default: $data_dir, $exp_dir)
  --num-songs N                   mini corpus songs (default: $num_songs)
  --num-train-songs N             of which training songs (default: $num_train_songs)
  --singers LIST                  mini corpus singers (default: $singers)
  --train-pitch-shifts LIST       re-pitched copies of the training songs, semitones (default: $train_pitch_shifts)
  --pairs LIST                    test conversions SRC:TGT:SHIFT (default: $pairs)
  --max-source-seconds S          excerpt of each test song to convert; 0 = whole (default: $max_source_seconds)
  --model-config FILE             model/training config (default: $model_config)
  --v2-checkpoint FILE            start from a released V2 CFM instead of training one (phase 0)
  --v1-f0-checkpoint FILE         V1 singing checkpoint holding the 256x768 F0 embedding
  --content-extractor NAME        phone or astral (default: $content_extractor)
  --content-checkpoint FILE       weights of the content extractor (phone: trained in stage 2)
  --ssl-model DIR                 astral: HuBERT directory (facebook/hubert-large-ll60k)
  --style-encoder NAME            campplus or melstats (default: $style_encoder)
  --f0-method NAME                harvest, crepe or rmvpe (default: $f0_method)
  --vocoder-path DIR              BigVGAN-v2 22 kHz (default: Griffin-Lim)
  --phase2 true|false             run stage 4 (default: $phase2)
  --compare-no-f0 true|false      also train/score the no-F0 baseline (default: $compare_no_f0)
  --no-f0 true|false              run only the no-F0 variant (default: $no_f0)
  --diffusion-steps K             Euler steps at conversion (default: the config's)
  --content-steps N               phone classifier steps (default: $content_steps)
  --phase0-steps N / --phase1-steps N / --phase2-steps N
                                  training steps per phase (default: the config's)
  --results FILE                  results file of stage 6 (default: $results)
  --phone-model-dir DIR           phone recognizer: stage 6 adds the PER of the conversions against the
                                  source lyrics, and of the sources (default: none, no PER)
  --use-gpu true|false            training (\$cuda_cmd), conversion and evaluation (\$decode_cmd)
                                  jobs ask for a GPU (default: $use_gpu)
  --device DEVICE                 auto, cpu, cuda, cuda:N or mps for those jobs; cpu with
                                  --use-gpu false (default: $device)

Stages:
  0  corpus: parallel songs (every singer sings every song) -> \$data_dir/mini
  1  features: mel, F0, style, phone labels -> \$data_dir/features (lhotse)
  2  content model (mini only): phone classifier -> \$exp_dir/content; content features
  3  training: phase 0 (V2 base, mini only), phase 1 (F0 adapters) [+ no-F0 baseline]
  4  phase 2 (optional): unfreeze the DiT at a lower learning rate
  5  convert the test songs to the target singers (with and without the octave shift)
  6  evaluate -> RESULTS.md
Jobs: training runs as \$cuda_cmd, content extraction, conversion and evaluation as \$decode_cmd
(cmd.sh); each writes its log under the step's log/ directory in \$exp_dir."

cmdline="$0 $*"
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

ngpu=1; [ "$use_gpu" = true ] || ngpu=0
case $device in auto|cpu|mps|cuda|cuda:[0-9]*) ;;
  *) echo "$0: --device $device: expected auto, cpu, cuda, cuda:N or mps" >&2; exit 2 ;; esac
case $use_gpu:$device in false:auto) device=cpu ;;
  false:cuda*) echo "$0: --device $device needs --use-gpu true" >&2; exit 2 ;; esac
if [ "$dataset" != mini ]; then
  echo "$0: --dataset $dataset is not supported (choose: mini)" >&2
  exit 2
fi
corpus=$data_dir/mini
feats=$data_dir/features
content_dir=$exp_dir/content
base_dir=$exp_dir/v2_base
[ -z "$content_checkpoint" ] && content_checkpoint=$content_dir/model.pt
systems=()
$no_f0 || systems+=(f0)
{ $no_f0 || $compare_no_f0; } && systems+=(no_f0)
final_phase=1
$phase2 && final_phase=2
common_style=(--style-encoder "$style_encoder")
f0_opts=(--f0-method "$f0_method")
[ -n "$rmvpe_model" ] && f0_opts+=(--rmvpe-model "$rmvpe_model")
content_opts=()
[ "$content_extractor" = astral ] && [ -n "$ssl_model" ] && content_opts=(--ssl-model "$ssl_model")
SECONDS=0

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: parallel songs -> $corpus"
  python3 local/make_parallel_songs.py --output-dir "$corpus" --seed "$seed" --num-songs "$num_songs" \
    --num-train-songs "$num_train_songs" --singers "$singers"
  log "  $(($(wc -l < "$corpus/train.tsv") - 1)) train and $(($(wc -l < "$corpus/test.tsv") - 1)) test renditions (${SECONDS}s)"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: features -> $feats"
  for part in train test; do
    shifts=()
    [ "$part" = train ] && shifts=("--pitch-shifts=$train_pitch_shifts")
    $train_cmd "$feats/log/features_$part.log" \
      python3 -m seedsvc.bin.compute_features --input "$corpus/$part.tsv" --output-dir "$feats" --subset "$part" \
        --phone-table "$corpus/phones.txt" "${common_style[@]}" "${f0_opts[@]}" "${shifts[@]}"
  done
  log "  $feats/cuts_{train,test}.jsonl.gz (${SECONDS}s)"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: content model -> $content_checkpoint"
  if [ "$content_extractor" = phone ] && [ ! -f "$content_checkpoint" ]; then
    $cuda_cmd --gpu $ngpu "$content_dir/log/train.log" \
      python3 -m seedsvc.bin.train_content --device "$device" --cuts "$feats/cuts_train.jsonl.gz" \
        --dev-manifest "$feats/cuts_test.jsonl.gz" --phone-table "$corpus/phones.txt" \
        --output "$content_checkpoint" --seed "$seed" --num-iters "$content_steps"
    grep "frame accuracy" "$content_dir/log/train.log" | sed 's/^.*INFO [^ ]* /  /' || true
  fi
  for part in train test; do
    $decode_cmd --gpu $ngpu "$feats/log/content_${content_extractor}_$part.log" \
      python3 -m seedsvc.bin.compute_content --device "$device" --cuts "$feats/cuts_$part.jsonl.gz" \
        --output "$feats/cuts_${part}_${content_extractor}.jsonl.gz" --content-extractor "$content_extractor" \
        --content-checkpoint "$content_checkpoint" "${content_opts[@]}"
  done
  log "  $feats/cuts_{train,test}_${content_extractor}.jsonl.gz (${SECONDS}s)"
fi

train_cuts=$feats/cuts_train_${content_extractor}.jsonl.gz
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  if [ -z "$v2_checkpoint" ]; then
    log "Stage 3a: phase 0 on $device, a V2 base model -> $base_dir/model.pth (log: $base_dir/log/train.log)"
    $cuda_cmd --gpu $ngpu "$base_dir/log/train.log" \
      python3 -m seedsvc.bin.train --device "$device" --config "$model_config" --phase 0 --cuts "$train_cuts" \
        --exp-dir "$base_dir" --seed "$seed" ${phase0_steps:+--num-iters "$phase0_steps"}
    v2_checkpoint=$base_dir/model.pth
  fi
  v1_opts=()
  [ -n "$v1_f0_checkpoint" ] && v1_opts=(--v1-f0-checkpoint "$v1_f0_checkpoint")
  for sys in "${systems[@]}"; do
    extra=()
    [ "$sys" = no_f0 ] && extra=(--no-f0 true)
    log "Stage 3b: phase 1 ($sys) on $device -> $exp_dir/${sys}_p1/model.pth (log: $exp_dir/${sys}_p1/log/train.log)"
    $cuda_cmd --gpu $ngpu "$exp_dir/${sys}_p1/log/train.log" \
      python3 -m seedsvc.bin.train --device "$device" --config "$model_config" --phase 1 --cuts "$train_cuts" \
        --exp-dir "$exp_dir/${sys}_p1" --checkpoint "$v2_checkpoint" --seed "$seed" \
        ${phase1_steps:+--num-iters "$phase1_steps"} "${v1_opts[@]}" "${extra[@]}"
    grep -m1 "trainable parameters" "$exp_dir/${sys}_p1/log-train-phase1.txt" | sed 's/^.*INFO [^ ]* /  /'
  done
  log "  trained: $(for sys in "${systems[@]}"; do printf '%s ' "$exp_dir/${sys}_p1/model.pth"; done)(${SECONDS}s)"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && $phase2; then
  for sys in "${systems[@]}"; do
    extra=()
    [ "$sys" = no_f0 ] && extra=(--no-f0 true)
    log "Stage 4: phase 2 ($sys) on $device -> $exp_dir/${sys}_p2/model.pth (log: $exp_dir/${sys}_p2/log/train.log)"
    $cuda_cmd --gpu $ngpu "$exp_dir/${sys}_p2/log/train.log" \
      python3 -m seedsvc.bin.train --device "$device" --config "$model_config" --phase 2 --cuts "$train_cuts" \
        --exp-dir "$exp_dir/${sys}_p2" --checkpoint "$exp_dir/${sys}_p1/model.pth" --seed "$seed" \
        ${phase2_steps:+--num-iters "$phase2_steps"} "${extra[@]}"
  done
fi

jobs=$exp_dir/convert/jobs.tsv
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: convert the test songs on $device -> $exp_dir/convert/SYSTEM for ${systems[*]} (log: SYSTEM/log/convert.log)"
  [ -f "$jobs" ] || python3 local/make_conversion_jobs.py --data-dir "$corpus" --output-dir "$exp_dir/convert" \
    --pairs "$pairs" --max-source-seconds "$max_source_seconds"
  steps=()
  [ -n "$diffusion_steps" ] && steps=(--diffusion-steps "$diffusion_steps")
  voc=()
  [ -n "$vocoder_path" ] && voc=(--vocoder-path "$vocoder_path")
  for sys in "${systems[@]}"; do
    out=$exp_dir/convert/$sys
    if [ -f "$out/.done" ]; then continue; fi
    $decode_cmd --gpu $ngpu "$out/log/convert.log" \
      python3 -m seedsvc.bin.convert --device "$device" --jobs "$jobs" --output-dir "$out" \
        --model-dir "$exp_dir/${sys}_p${final_phase}" --content-extractor "$content_extractor" \
        --content-checkpoint "$content_checkpoint" "${content_opts[@]}" "${common_style[@]}" "${f0_opts[@]}" \
        "${steps[@]}" "${voc[@]}"
    touch "$out/.done"
  done
  for sys in "${systems[@]}"; do
    log "  $exp_dir/convert/$sys: $(find "$exp_dir/convert/$sys" -maxdepth 1 -name '*.wav' | wc -l) converted songs (${SECONDS}s)"
  done
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "Stage 6: evaluate on $device -> $exp_dir/results.md, results_per_song.tsv, $results (log: $exp_dir/log/evaluate.log)"
  sys_opts=()
  for sys in "${systems[@]}"; do sys_opts+=(--system "$sys=$exp_dir/convert/$sys"); done
  $decode_cmd --gpu $ngpu "$exp_dir/log/evaluate.log" \
    python3 -m seedsvc.bin.evaluate --device "$device" --jobs "$jobs" "${sys_opts[@]}" \
      --output-md "$exp_dir/results.md" --output-tsv "$exp_dir/results_per_song.tsv" "${f0_opts[@]}" \
      ${phone_model_dir:+--phone-model-dir "$phone_model_dir"} \
      --title "SeedSVC on the mini corpus (phase ${final_phase})"
  {
    cat "$exp_dir/results.md"
    echo
    echo "Systems: f0 = V2 base + F0 cross-attention (phase ${final_phase}); no_f0 = the same recipe with --no-f0"
    echo "(the DiT fine-tuned for the same number of steps, no F0 input). F0 reference: the F0 the source"
    echo "was sung on (the score in the source singer's octave) times 2^(shift/12); the outputs' F0 is tracked"
    echo "with $f0_method. MCD only for the shifted conversions (their target-singer rendition is the parallel"
    echo "ground truth). Vocoder: ${vocoder_path:-Griffin-Lim}."
    echo
    echo "Run: $(date '+%Y-%m-%d %H:%M'), $cmdline: stages $stage..$stop_stage took ${SECONDS}s (--device $device; $(nproc) CPUs)."
  } > "$results"
  log "  wrote $results (${SECONDS}s)"
fi

log "Done: stages $stage..$stop_stage in ${SECONDS}s."
