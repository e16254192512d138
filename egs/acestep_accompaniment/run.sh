#!/usr/bin/env bash
# Vocal -> accompaniment on ACE-Step v1: LoRA fine-tuning in two modes (image2image flow from the
# vocal, and a vocal ControlNet), optional Optuna search, generation for held-out vocals, metrics
# and a blind comparison page.
#
# Runs on the embedded mini corpus's accompaniment pairs by default, with a stand-in checkpoint
# (tiny random networks in the released layout: the pipeline runs, the audio is noise). Give
# --checkpoint-dir ACE-Step-v1-3.5B for the released model and --corpus-dir DIR for your pairs
# ({key}_vocal, {key}_inst or {key}_mix, {key}_prompt.txt, {key}_lyrics.txt). Finished stages are skipped.
#
#   ./run.sh                                   # all stages on the mini corpus
#   ./run.sh --stage 3 --stop-stage 3          # image2image training again (resumes its checkpoints)
#   ./run.sh --corpus-dir /data/pairs --checkpoint-dir ACE-Step-v1-3.5B \
#       --i2i-config conf/image2image_base.json --controlnet-config conf/controlnet_base.json
#   cmd_backend=slurm ./run.sh                 # caching, training and generation as cluster GPU jobs
set -euo pipefail

stage=0
stop_stage=100
corpus_dir=               # your pairs; empty: the mini corpus's accompaniment part
num_songs=5               # mini corpus pieces
seed=0
data_dir=data
exp_dir=exp
checkpoint_dir=           # released ACE-Step-v1-3.5B folder; empty: a stand-in in $exp_dir/standin
output_type=accompaniment # accompaniment (target = _inst) or mix (target = _mix)
loudness=-14              # LUFS of every prepared file; none keeps the levels
num_test=1                # pairs held out for generation and evaluation
i2i_config=conf/image2image_mini.json
controlnet_config=conf/controlnet_mini.json
num_iters=                # training updates of stages 3-4 (default: the configs' max_steps)
optuna=false              # run stage 5 (the Optuna search on the image2image config)
optuna_config=conf/optuna_mini.json
optuna_jobs=1             # parallel search processes on one study
strengths="0.3 0.7"       # image2image reference strengths generated in stage 6
infer_step=20             # denoising steps in stage 6
guidance_scale=7          # guidance in stage 6
lyrics_language=auto      # lyric language of the prepared lyrics
use_gpu=true              # caching, training and generation ask for a GPU (--gpu 1)
device=auto               # --device of the binaries: auto | cpu | cuda | cuda:N | mps
dtype=auto                # generation precision (auto: bf16 on CUDA, else fp32)
results=RESULTS.md

help_message="Usage: $0 [options]
  --stage N / --stop-stage N        stages to run (default: $stage..$stop_stage)
  --corpus-dir DIR                  your pairs (default: the mini corpus, --num-songs $num_songs pieces)
  --seed N                          mini corpus and generation seed (default: $seed)
  --data-dir DIR / --exp-dir DIR    prepared data / experiments (default: $data_dir, $exp_dir)
  --checkpoint-dir DIR              ACE-Step-v1-3.5B folder (default: a stand-in, made in stage 1)
  --output-type TYPE                accompaniment or mix (default: $output_type)
  --loudness LUFS|none              loudness of the prepared files (default: $loudness)
  --num-test N                      pairs held out for stages 6-7 (default: $num_test)
  --i2i-config FILE                 image2image training config (default: $i2i_config)
  --controlnet-config FILE          ControlNet training config (default: $controlnet_config)
  --num-iters N                     training updates (default: the configs' max_steps)
  --optuna true|false               run the Optuna search of stage 5 (default: $optuna)
  --optuna-config FILE              search space and pruner (default: $optuna_config)
  --optuna-jobs N                   parallel search processes on one study (default: $optuna_jobs)
  --strengths \"S1 S2\"               image2image reference strengths generated (default: $strengths)
  --infer-step N / --guidance-scale G   stage 6 sampling (default: $infer_step, $guidance_scale)
  --lyrics-language L               language of the lyrics (default: $lyrics_language)
  --use-gpu true|false              jobs ask for a GPU (default: $use_gpu)
  --device DEVICE                   auto, cpu, cuda, cuda:N or mps (default: $device)
  --dtype TYPE                      generation precision auto, fp32, bf16, fp16 (default: $dtype)
  --results FILE                    results file of stage 7 (default: $results)

Stages:
  0  corpus: the mini corpus's accompaniment pairs -> \$data_dir/mini (or --corpus-dir)
  1  preparation: pairs checked, 48 kHz stereo, loudness, common length, train/test split ->
     \$data_dir/prepared; the stand-in checkpoint when none is given; the configs validated
  2  latent cache of the training pairs (DCAE latents, prompt states, lyric ids) -> \$data_dir/cache/{vocal,target}
  3  image2image training (LoRA, flow from the vocal) -> \$exp_dir/image2image/bundle
  4  ControlNet training (LoRA + control encoder) -> \$exp_dir/controlnet/bundle
  5  Optuna search (only with --optuna true) -> \$exp_dir/optuna/best_config.json
  6  generation for the held-out vocals: image2image at each --strengths, ControlNet, and the
     base model's audio2audio as the baseline -> \$exp_dir/generate/<system>/
  7  evaluation: metrics -> \$results; blind comparison page -> \$exp_dir/compare/index.html;
     spectrograms of the first test key (vocal, target, every system) -> \$exp_dir/spectrogram.png"

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
case $output_type in accompaniment) part=inst ;; mix) part=mix ;;
  *) echo "$0: --output-type $output_type: expected accompaniment or mix" >&2; exit 2 ;; esac
corpus=${corpus_dir:-$data_dir/mini/accompaniment}
prepared=$data_dir/prepared
cache=$data_dir/cache
[ -n "$checkpoint_dir" ] || checkpoint_dir=$exp_dir/standin
gen=$exp_dir/generate
SECONDS=0

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ -z "$corpus_dir" ]; then
  log "Stage 0: mini corpus accompaniment pairs -> $corpus"
  mkdir -p "$data_dir"
  python3 "$SHIRABE_ROOT/local/make_mini_corpus.py" --output-dir "$data_dir/mini" --parts accompaniment \
    --num-songs "$num_songs" --seed "$seed" --no-progress true > "$data_dir/mini_summary.json"
  log "  $(find "$corpus" -maxdepth 1 -name '*_vocal.wav' | wc -l) pairs (${SECONDS}s)"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: prepare $corpus -> $prepared (log: $prepared/log/prepare.log)"
  $train_cmd "$prepared/log/prepare.log" \
    python3 -m acestep.bin.prepare_accompaniment --data-dir "$corpus" --output-dir "$prepared" \
      --output-type "$output_type" --loudness "$loudness" --num-test "$num_test" --progress false
  grep -h "pairs prepared" "$prepared/log/prepare.log" | sed 's/^.*INFO [^ ]* /  /'
  if [ ! -d "$checkpoint_dir/ace_step_transformer" ]; then
    log "  stand-in checkpoint -> $checkpoint_dir (tiny random networks: the audio is noise)"
    python3 -m acestep.bin.make_standins --output-dir "$checkpoint_dir" --seed "$seed"
  fi
  for config in "$i2i_config" "$controlnet_config" "$optuna_config"; do
    python3 -m acestep.bin.validate_config "$config" --checkpoint-dir "$checkpoint_dir" > /dev/null
  done
  log "  configs valid for $checkpoint_dir (${SECONDS}s)"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for side in vocal target; do
    log "Stage 2: latent cache of the training ${side}s on $device -> $cache/$side (log: $cache/log/$side.log)"
    $cuda_cmd --gpu $ngpu "$cache/log/$side.log" \
      python3 -m acestep.bin.cache_latents --device "$device" --checkpoint-dir "$checkpoint_dir" \
        --data-dir "$prepared/train/$side" --output-dir "$cache/$side" --target audio \
        --lyrics-language "$lyrics_language"
    grep -h "cached\|wrote" "$cache/log/$side.log" | tail -n 1 | sed 's/^.*INFO [^ ]* /  /' || true
  done
fi

train() {  # <config> <name>
  log "Stage $3: $2 training on $device -> $exp_dir/$2 (log: $exp_dir/$2/log/train.log)"
  $cuda_cmd --gpu $ngpu "$exp_dir/$2/log/train.log" \
    python3 -m acestep.bin.train_accompaniment --device "$device" --config "$1" \
      --checkpoint-dir "$checkpoint_dir" --dataset-path "$cache" --exp-dir "$exp_dir/$2" \
      ${num_iters:+--num-iters "$num_iters"}
  grep -h "validation\|loss" "$exp_dir/$2/log/train.log" | tail -n 1 | sed 's/^.*INFO [^ ]* /  last /' || true
}
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then train "$i2i_config" image2image 3; fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then train "$controlnet_config" controlnet 4; fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ] && [ "$optuna" = true ]; then
  study=$exp_dir/optuna
  log "Stage 5: Optuna search, $optuna_jobs job(s) on one study -> $study (logs: $study/log/search.*.log)"
  mkdir -p "$study"
  $cuda_cmd --gpu $ngpu JOB=1:"$optuna_jobs" "$study/log/search.JOB.log" \
    python3 -m acestep.bin.optuna_search --device "$device" --config "$i2i_config" \
      --optuna-config "$optuna_config" --checkpoint-dir "$checkpoint_dir" --dataset-path "$cache" \
      --storage "sqlite:///$(cd "$study" && pwd)/study.db" --study-name accompaniment --output-dir "$study" \
      --sampler-seed "$seed"
  log "  best config: $study/best_config.json (${SECONDS}s)"
fi

generate() {  # <system> <extra options...>: every test vocal with its own prompt and lyrics
  local system=$1; shift
  log "Stage 6: $system on $device -> $gen/$system (log: $gen/$system/log/generate.*.log)"
  for f in "$prepared"/test/vocal/*.flac; do
    key=$(basename "$f" .flac)
    $decode_cmd --gpu $ngpu "$gen/$system/log/generate.$key.log" \
      python3 -m acestep.bin.generate_accompaniment --device "$device" --dtype "$dtype" \
        --checkpoint-dir "$checkpoint_dir" --vocal "$f" --prompt "$(cat "$prepared/test/vocal/${key}_prompt.txt")" \
        --lyrics-file "$prepared/test/vocal/${key}_lyrics.txt" --lyrics-language "$lyrics_language" \
        --infer-step "$infer_step" --guidance-scale "$guidance_scale" --output-type "$output_type" \
        --output-dir "$gen/$system" --format flac --seed "$seed" "$@"
  done
}
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  [ -n "$(ls "$prepared"/test/vocal/*.flac 2>/dev/null)" ] || { echo "$0: no test vocals in $prepared/test" >&2; exit 1; }
  for s in $strengths; do
    generate "image2image_s$s" --lora-path "$exp_dir/image2image/bundle" --ref-strength "$s"
  done
  generate controlnet --lora-path "$exp_dir/controlnet/bundle"
  generate baseline_a2a --baseline a2a --ref-strength 0.5
  log "  $(find "$gen" -name "*_$output_type.flac" | wc -l) files (${SECONDS}s)"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  systems=()
  for d in "$gen"/*/; do systems+=("$(basename "$d")=$d"); done
  log "Stage 7: metrics of ${#systems[@]} systems -> $results; comparison page -> $exp_dir/compare/index.html"
  note="Checkpoint: $checkpoint_dir; configs $i2i_config, $controlnet_config; $infer_step steps, guidance $guidance_scale."
  [ "$checkpoint_dir" = "$exp_dir/standin" ] && note="$note Stand-in networks (random DCAE/vocoder/UMT5, tiny transformer): the audio is noise, so these numbers test the pipeline, not the method."
  $decode_cmd "$exp_dir/log/evaluate.log" \
    python3 -m acestep.bin.evaluate_accompaniment --systems "${systems[@]}" --vocals "$prepared/test/vocal" \
      --references "$prepared/test/target" --system-suffix "_$output_type" --results "$results" \
      --note "$note" --progress false
  python3 -m acestep.bin.compare --systems "${systems[@]}" --vocals "$prepared/test/vocal" \
    --output-dir "$exp_dir/compare" --system-suffix "_$output_type" --seed "$seed"
  key=$(basename "$(ls "$prepared"/test/vocal/*.flac | head -n 1)" .flac)
  panels=(--wav "$prepared/test/vocal/$key.flac" --label vocal --wav "$prepared/test/target/$key.flac" --label target)
  for d in "$gen"/*/; do panels+=(--wav "$d${key}_$output_type.flac" --label "$(basename "$d")"); done
  python3 -m shirabe.bin.plot_spectrograms "${panels[@]}" --title "$key" --output "$exp_dir/spectrogram.png"
  log "  $results, $exp_dir/compare/index.html, $exp_dir/spectrogram.png (${SECONDS}s)"
fi
