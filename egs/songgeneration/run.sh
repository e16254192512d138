#!/usr/bin/env bash
# SongGeneration (LeVo) on Japanese songs: metadata -> audio tokenizer -> token tensors -> training ->
# (merge) -> generation -> evaluation.
#
# Runs on the embedded mini corpus's accompaniment pairs (a sung vocal, a band and their mix per piece)
# with a tiny LeLM trained from scratch and the mini stand-in audio tokenizer (k-means codes over mel
# frames, decoded by Griffin-Lim: crude, but it runs end to end and can be listened to). Give
# --base-model DIR --training-type lora|full to fine-tune a released checkpoint instead.
#
#   ./run.sh                                   # all stages on the mini corpus
#   ./run.sh --stage 4 --stop-stage 4          # training again (resumes its checkpoints)
#   cmd_backend=slurm ./run.sh                 # tokenizer, preparation and training as cluster GPU jobs
set -euo pipefail

stage=0
stop_stage=100
num_songs=6               # mini corpus pieces
num_test=1                # pieces held out for generation and evaluation
seed=0
data_dir=data
exp_dir=exp
model_config=conf/lelm_tiny_mini.yaml   # from-scratch model (upstream's config.yaml schema)
base_model=               # a released checkpoint folder (config.yaml + model.pt) to fine-tune
training_type=full        # full or lora
max_steps=120             # training updates
batch_size=1
lr=1e-3                   # peak learning rate (about 1e-4 when fine-tuning a released model)
codebook_size=256         # mini tokenizer codes per stream
duration=10               # seconds generated per held-out song
use_gpu=true              # tokenizer, preparation, training and generation ask for a GPU (--gpu 1)
device=auto               # --device of the binaries: auto | cpu | cuda | cuda:N | mps
results=RESULTS.md

help_message="Usage: $0 [options]
  --stage N / --stop-stage N        stages to run (default: $stage..$stop_stage)
  --num-songs N / --num-test N      mini corpus pieces / held out (default: $num_songs, $num_test)
  --seed N                          corpus, tokenizer and training seed (default: $seed)
  --data-dir DIR / --exp-dir DIR    prepared data / experiments (default: $data_dir, $exp_dir)
  --model-config FILE               model trained from scratch (default: $model_config)
  --base-model DIR                  released checkpoint to fine-tune (default: none, from scratch)
  --training-type full|lora         what trains (default: $training_type)
  --max-steps N / --batch-size N / --lr X   training (default: $max_steps, $batch_size, $lr)
  --codebook-size K                 mini tokenizer codes (default: $codebook_size)
  --duration S                      seconds generated per held-out song (default: $duration)
  --use-gpu true|false              jobs ask for a GPU (default: $use_gpu)
  --device DEVICE                   auto, cpu, cuda, cuda:N or mps (default: $device)
  --results FILE                    results file of stage 7 (default: $results)

Stages:
  0  corpus: the mini corpus's accompaniment pairs -> \$data_dir/mini
  1  metadata.jsonl (training songs) and the held-out songs' generation JSONL; the Qwen2 text
     tokenizer folder; the base model folder -> \$data_dir/metadata, \$exp_dir/base
  2  mini audio tokenizer (k-means over 25 Hz mel frames of each stem) -> \$exp_dir/tokenizer/mini.safetensors
  3  token tensors [3, T] + 10 s prompts -> \$data_dir/prepared_{train,test} (manifest.jsonl, rejects.tsv)
  4  training (from scratch, or --base-model full/LoRA) -> \$exp_dir/lelm
  5  LoRA only: adapter merged into a full checkpoint -> \$exp_dir/lelm/merged
  6  generation for the held-out songs with their first 10 s as prompt -> \$exp_dir/generate
  7  evaluation: teacher-forced accuracy, length and EOS, the prompt ban, audio distance -> \$results"

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
case $training_type in full|lora) ;; *) echo "$0: --training-type $training_type: expected full or lora" >&2; exit 2 ;; esac
[ "$training_type" = full ] || [ -n "$base_model" ] || { echo "$0: --training-type lora needs --base-model" >&2; exit 2; }
pairs=$data_dir/mini/accompaniment
meta=$data_dir/metadata
tokenizer=$exp_dir/tokenizer/mini.safetensors
base=${base_model:-$exp_dir/base}
model_dir=$exp_dir/lelm
config=$exp_dir/train_config.yaml   # written in stage 1 (and test_config.yaml for the held-out songs)
ckpt=$model_dir/final; [ "$training_type" = full ] || ckpt=$model_dir/merged
SECONDS=0

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: mini corpus accompaniment pairs -> $pairs"
  mkdir -p "$data_dir"
  python3 "$SHIRABE_ROOT/local/make_mini_corpus.py" --output-dir "$data_dir/mini" --parts accompaniment \
    --num-songs "$num_songs" --seed "$seed" --no-progress true > "$data_dir/mini_summary.json"
  log "  $(find "$pairs" -maxdepth 1 -name '*_mix.wav' | wc -l) pieces (${SECONDS}s)"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: metadata -> $meta; text tokenizer and base model -> $base"
  python3 local/make_metadata.py --pairs-dir "$pairs" --output-dir "$meta" --num-test "$num_test"
  if [ -z "$base_model" ]; then
    mkdir -p "$base"
    cp "$model_config" "$base/config.yaml"
    [ -f "$base/qwen2_tokenizer/vocab.json" ] || \
      python3 -m songgeneration.bin.make_text_tokenizer --output-dir "$base/qwen2_tokenizer"
  fi
  mkdir -p "$exp_dir"
  for split in train test; do  # one config per split: the held-out songs are prepared apart
    cat > "$exp_dir/${split}_config.yaml" <<EOF
paths:
  base_model_path: $(realpath "$base")
  tokenizer: mini
  audio_tokenizer_path: $(realpath -m "$tokenizer")
  metadata_path: $(realpath "$meta/metadata_$split.jsonl")
  prepared_data_dir: $(realpath -m "$data_dir/prepared_$split")
  output_dir: $(realpath -m "$model_dir")
  text_tokenizer_path: $(realpath -m "$base/qwen2_tokenizer")
data: {min_duration: 5.0, max_duration: 60.0}
training: {type: $training_type, from_scratch: $([ -z "$base_model" ] && echo true || echo false), max_steps: $max_steps,
           batch_size: $batch_size, learning_rate: $lr, warmup_steps: $((max_steps / 10)), precision: float32,
           gradient_checkpointing: false, save_every_n: $((max_steps / 3)), seed: $seed}
EOF
  done
  log "  $config, $exp_dir/test_config.yaml (${SECONDS}s)"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: mini audio tokenizer ($codebook_size codes) on $device -> $tokenizer"
  $cuda_cmd --gpu $ngpu "$exp_dir/tokenizer/log/train.log" \
    python3 -m songgeneration.bin.train_tokenizer --device "$device" --wavs "$pairs" --output "$tokenizer" \
      --codebook-size "$codebook_size" --seed "$seed" --progress false
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for split in train test; do
    out=$data_dir/prepared_$split
    log "Stage 3: token tensors of the $split songs on $device -> $out (log: $out/log/prepare.log)"
    $cuda_cmd --gpu $ngpu "$out/log/prepare.log" \
      python3 -m songgeneration.bin.prepare_data --device "$device" --config "$exp_dir/${split}_config.yaml" \
        --progress false
    grep -h "prepared" "$out/log/prepare.log" | tail -n 1 | sed 's/^.*INFO [^ ]* /  /' || true
  done
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: training ($training_type) on $device -> $model_dir (log: $model_dir/log/train.log)"
  $cuda_cmd --gpu $ngpu "$model_dir/log/train.log" \
    python3 -m songgeneration.bin.train --device "$device" --config "$config"
  grep -h "loss" "$model_dir/log/train.log" | tail -n 1 | sed 's/^.*INFO [^ ]* /  last /' || true
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ] && [ "$training_type" = lora ]; then
  log "Stage 5: merge the adapter -> $ckpt"
  python3 -m songgeneration.bin.merge_lora --config "$config" --adapter "$model_dir/lora" --output-dir "$ckpt"
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "Stage 6: generate the held-out songs on $device -> $exp_dir/generate (log: $exp_dir/generate/log/generate.log)"
  $decode_cmd --gpu $ngpu "$exp_dir/generate/log/generate.log" \
    python3 -m songgeneration.bin.generate --device "$device" --ckpt-dir "$ckpt" --input-jsonl "$meta/test.jsonl" \
      --save-dir "$exp_dir/generate" --generate-type separate --tokenizer mini --tokenizer-path "$tokenizer" \
      --text-tokenizer-dir "$base/qwen2_tokenizer" --duration "$duration" --seed "$seed" --format flac \
      --progress false
  log "  $(find "$exp_dir/generate/audios" -name '*.flac' | wc -l) files (${SECONDS}s)"
fi

if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "Stage 7: evaluate -> $results (log: $exp_dir/log/evaluate.log)"
  $decode_cmd --gpu $ngpu "$exp_dir/log/evaluate.log" \
    python3 -m songgeneration.bin.evaluate --device "$device" --ckpt-dir "$ckpt" \
      --prepared-dir "$data_dir/prepared_test" --test-manifest "$data_dir/prepared_test/manifest.jsonl" \
      --generated-dir "$exp_dir/generate" --input-jsonl "$meta/test.jsonl" \
      --tokenizer mini --tokenizer-path "$tokenizer" --text-tokenizer-dir "$base/qwen2_tokenizer" \
      --results "$results" --system "lelm-$training_type"
  tail -n 4 "$exp_dir/log/evaluate.log" | sed 's/^.*INFO [^ ]* /  /'
  log "  $results (${SECONDS}s)"
fi
