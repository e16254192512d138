#!/usr/bin/env bash
# Japanese songs for SongBloom: lyrics, style prompts, sketch codebook and training features.
#
# Runs on the embedded mini corpus by default (a cappella songs laid out like jaCappella); give
# --dataset jacappella --corpus-dir DIR for the real corpus. Without the released VAE and MuQ
# (--vae-config/--vae-ckpt, --muq-dir) small random stand-ins are made, which run the pipeline
# but whose latents mean nothing. Finished stages are skipped.
#
#   ./run.sh                                  # all stages on the mini corpus
#   ./run.sh --stage 3 --stop-stage 4         # codebook and features again
#   ./run.sh --dataset jacappella --corpus-dir /data/jaCappella \
#       --vae-config ckpt/stable_audio_1920_vae.json --vae-ckpt ckpt/autoencoder_music_dsp1920.ckpt \
#       --muq-dir ckpt/MuQ-large-msd-iter --codebook exp/recovered/codebook.pt
#   cmd_backend=slurm ./run.sh --nj 8         # codebook and features as cluster GPU jobs (see cmd.sh)
set -euo pipefail

stage=0
stop_stage=100
dataset=mini              # mini (embedded, generated offline) or jacappella (--corpus-dir)
corpus_dir=               # jacappella: the corpus root (meta.csv, <subset>/<title>/...)
data_dir=data
exp_dir=exp
seed=0
num_songs=6               # mini corpus songs
audio_type=lead_vocal     # lead_vocal or mixture
musicxml_type=svs         # svs (lyrics as sung) or plain
prompt_sec=10             # style prompt length (SongBloom: 10 s)
clean_japanese=true       # keep only Japanese characters in the lyrics (reported per song)
dev_songs=1               # songs held out whole for dev and test
test_songs=1
vae_config=               # released stable_audio_1920_vae.json; empty: a stand-in
vae_ckpt=                 # released autoencoder_music_dsp1920.ckpt (or a SongBloom .pt with --vae-prefix)
vae_prefix=
muq_dir=                  # released OpenMuQ/MuQ-large-msd-iter directory; empty: a stand-in
codebook=                 # a sketch codebook (e.g. recovered from a released model); empty: train one
muq_layer=-1              # MuQ hidden state the trained codebook clusters
codebook_size=            # sketch ids; default: the model config's num_pitch (released: 16384)
vq_steps=2000
model_config=             # SongBloom yaml; default: the packaged songbloom_tiny_mini.yaml
init_from=                # a released {name}.pt to fine-tune (its yaml as --model-config); empty: from scratch
mode=full                 # full or lora
num_iters=300             # training updates
lr=3e-4                   # peak learning rate (use ~1e-4 when fine-tuning a released model)
max_tokens=4000           # LM positions per batch
dtype=float32             # training precision: float32, bf16 or fp16 (CUDA)
gradient_checkpointing=false
avg=2                     # checkpoints averaged in stage 6
recover_samples=4         # stage 3 with --init-from: songs the model generates per training lyric
max_duration=40           # generation budget in seconds (stage 7)
n_samples=1               # songs generated per test lyric
phone_model_dir=pretrained/sung_phone_recognizer   # phone recognizer for sung audio (trained in 8a if missing)
phone_songs=40            # mini corpus songs rendered to train one (stage 8a)
results=RESULTS.md
nj=2                      # feature extraction jobs per split
use_gpu=true              # codebook and feature jobs ask for a GPU (--gpu 1)
device=auto               # --device of their binaries: auto | cpu | cuda | cuda:N | mps

help_message="Usage: $0 [options]
  --stage N / --stop-stage N      stages to run (default: $stage..$stop_stage)
  --dataset NAME                  mini or jacappella (default: $dataset)
  --corpus-dir DIR                jacappella: the corpus root
  --data-dir DIR / --exp-dir DIR  prepared data / experiments (default: $data_dir, $exp_dir)
  --seed N                        mini corpus, splits, codebook (default: $seed)
  --num-songs N                   mini corpus songs (default: $num_songs)
  --audio-type TYPE               lead_vocal or mixture (default: $audio_type)
  --musicxml-type TYPE            svs or plain lyrics from the score (default: $musicxml_type)
  --prompt-sec S                  style prompt length (default: $prompt_sec)
  --clean-japanese true|false     drop non-Japanese characters from the lyrics (default: $clean_japanese)
  --dev-songs N / --test-songs N  songs held out for dev / test (default: $dev_songs, $test_songs)
  --vae-config FILE --vae-ckpt FILE [--vae-prefix P]
                                  released VAE (default: random stand-ins in \$exp_dir/codecs)
  --muq-dir DIR                   released MuQ directory (default: a stand-in)
  --codebook FILE                 sketch codebook to use (default: made in stage 3: recovered from
                                  --init-from's own songs, else k-means over MuQ frames)
  --recover-samples N             songs per training lyric generated for the recovery (default: $recover_samples)
  --muq-layer N                   MuQ layer of the trained codebook (default: $muq_layer = last)
  --codebook-size K               sketch ids (default: the model config's num_pitch)
  --vq-steps N                    k-means updates (default: $vq_steps)
  --model-config FILE             SongBloom yaml (default: the packaged songbloom_tiny_mini.yaml)
  --init-from FILE                released .pt to fine-tune (default: none, train from scratch)
  --mode full|lora                what trains (default: $mode; see docs/songbloom_training.md)
  --num-iters N / --lr X          training updates and peak rate (default: $num_iters, $lr)
  --max-tokens N                  LM positions per batch (default: $max_tokens)
  --dtype TYPE                    training precision float32, bf16 or fp16 (default: $dtype)
  --gradient-checkpointing BOOL   recompute activations to save memory (default: $gradient_checkpointing)
  --avg K                         checkpoints averaged (default: $avg)
  --max-duration S                generation budget in seconds (default: $max_duration)
  --n-samples N                   songs per test lyric (default: $n_samples)
  --phone-model-dir DIR           phone recognizer for sung audio; trained in stage 8a when the folder
                                  has none (default: $phone_model_dir)
  --phone-songs N                 mini songs rendered for that recognizer (default: $phone_songs)
  --results FILE                  results file of stage 8 (default: $results)
  --nj N                          feature jobs per split (default: $nj)
  --use-gpu true|false            every job but preparation asks for a GPU (default: $use_gpu)
  --device DEVICE                 auto, cpu, cuda, cuda:N or mps (default: $device)

Stages:
  0  corpus: the mini corpus's songs part -> \$data_dir/mini (jacappella: uses --corpus-dir)
  1  preparation: lyrics from the lead part's score with phrase punctuation, style prompts,
     splits -> \$data_dir/prepared (lhotse manifests, SongBloom JSONL, songs.tsv, rejects.tsv)
  2  codecs: stand-in VAE and MuQ when the released ones are not given -> \$exp_dir/codecs
  3  sketch codebook: with --init-from, recovered from the model's own songs (keeps its sketch
     vocabulary); otherwise k-means over MuQ frames of the training songs -> \$exp_dir/vq/codebook.pt
  4  features: VAE latents, sketch ids, prompt latents -> \$data_dir/features (lhotse)
  5  training (from scratch, or --init-from a released model) -> \$exp_dir/songbloom
  6  averaging of the last --avg checkpoints -> \$exp_dir/songbloom/model-avgK.pt
  7  generation for the test songs' lyrics with their prompts -> \$exp_dir/generate/
  8  evaluation: teacher-forced scores, PER, style similarity, FD, structure -> \$results, report
Codebook, features and training run as \$cuda_cmd jobs, generation and scoring as \$decode_cmd jobs (both
ask for a GPU unless --use-gpu false); logs go under each stage's log/ directory."

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
case $dataset in
  mini) corpus=$data_dir/mini/songs ;;
  jacappella)
    [ -n "$corpus_dir" ] || { echo "$0: --dataset jacappella needs --corpus-dir" >&2; exit 2; }
    corpus=$corpus_dir ;;
  *) echo "$0: --dataset $dataset is not supported (choose: mini, jacappella)" >&2; exit 2 ;;
esac
if { [ -n "$vae_config" ] || [ -n "$vae_ckpt" ]; } && { [ -z "$vae_config" ] || [ -z "$vae_ckpt" ]; }; then
  echo "$0: give both --vae-config and --vae-ckpt (or neither, for stand-ins)" >&2; exit 2
fi
prepared=$data_dir/prepared
feats=$data_dir/features
codecs=$exp_dir/codecs
[ -n "$vae_config" ] || { vae_config=$codecs/vae.json; vae_ckpt=$codecs/vae.ckpt; }
[ -n "$muq_dir" ] || muq_dir=$codecs/muq
[ -n "$codebook" ] || codebook=$exp_dir/vq/codebook.pt
[ -n "$model_config" ] || model_config=$SHIRABE_ROOT/songbloom/models/configs/songbloom_tiny_mini.yaml
[ -n "$codebook_size" ] || codebook_size=$(python3 -c \
  'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["model"]["num_pitch"])' "$model_config")
config_opts=()   # where the model config finds its VAE: the stand-ins, or the config's own folder
[ "$vae_config" = "$codecs/vae.json" ] && config_opts=(--config-dir "$codecs")
model_dir=$exp_dir/songbloom
system=songbloom-avg$avg
SECONDS=0

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$dataset" = mini ]; then
  log "Stage 0: mini corpus songs -> $corpus"
  python3 "$SHIRABE_ROOT/local/make_mini_corpus.py" --output-dir "$data_dir/mini" --parts songs \
    --num-songs "$num_songs" --seed "$seed"
  log "  $(find "$corpus" -name lead_vocal.wav | wc -l) songs (${SECONDS}s)"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: prepare $dataset -> $prepared (log: $prepared/log/prepare.log)"
  $train_cmd "$prepared/log/prepare.log" \
    python3 "$SHIRABE_ROOT/local/prepare_jacappella.py" --corpus-dir "$corpus" --output-dir "$prepared" \
      --audio-type "$audio_type" --musicxml-type "$musicxml_type" --prompt-sec "$prompt_sec" \
      --clean-japanese "$clean_japanese" --dev-songs "$dev_songs" --test-songs "$test_songs" --seed "$seed" \
      --prefix songs
  grep -h "kept" "$prepared/log/prepare.log" | sed 's/^.*INFO [^ ]* /  /' || true
  log "  songs: $prepared/songs.tsv, rejected: $prepared/rejects.tsv (${SECONDS}s)"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  if [ "$vae_config" = "$codecs/vae.json" ] || [ "$muq_dir" = "$codecs/muq" ]; then
    log "Stage 2: random stand-in VAE and MuQ -> $codecs (pipeline test only; give the released files)"
    python3 -m songbloom.bin.make_standins --output-dir "$codecs" --seed "$seed"
  else
    log "Stage 2: released codecs $vae_ckpt and $muq_dir; nothing to make"
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  if [ -f "$codebook" ]; then
    log "Stage 3: sketch codebook $codebook exists; kept"
  elif [ -n "$init_from" ]; then
    rec=$exp_dir/recover
    log "Stage 3: recover the sketch codebook of $init_from from its own songs -> $codebook (logs: $rec/log/)"
    $decode_cmd --gpu $ngpu "$rec/log/infer.log" \
      python3 -m songbloom.bin.infer --device "$device" --config "$model_config" --ckpt-path "$init_from" \
        --input-jsonl "$prepared/songs_train.jsonl" --output-dir "$rec/songs" --n-samples "$recover_samples" \
        --max-duration "$max_duration" --seed "$seed" --save-sketch true --progress false
    $cuda_cmd --gpu $ngpu "$rec/log/recover_codebook.log" \
      python3 -m songbloom.bin.recover_codebook --device "$device" --songs "$rec/songs/generated.jsonl" \
        --muq-dir "$muq_dir" --output "$codebook" --codebook-size "$codebook_size" --seed "$seed"
    grep -h "wrote" "$rec/log/recover_codebook.log" | sed 's/^.*INFO [^ ]* /  /'
  else
    log "Stage 3: sketch codebook on $device -> $codebook (log: $exp_dir/vq/log/train_vq.log)"
    $cuda_cmd --gpu $ngpu "$exp_dir/vq/log/train_vq.log" \
      python3 -m songbloom.bin.train_vq --device "$device" --manifest "$prepared/songs_recordings_train.jsonl.gz" \
        --muq-dir "$muq_dir" --output "$codebook" --muq-layer "$muq_layer" --codebook-size "$codebook_size" \
        --steps "$vq_steps" --seed "$seed" --progress false
    grep -h "wrote" "$exp_dir/vq/log/train_vq.log" | sed 's/^.*INFO [^ ]* /  /'
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for split in train dev test; do
    out=$feats/cuts_$split.jsonl.gz
    [ -f "$out" ] && { log "Stage 4: $out exists; kept"; continue; }
    manifest=$prepared/songs_recordings_$split.jsonl.gz
    [ -f "$manifest" ] || { log "Stage 4: no $split songs ($manifest); skipped"; continue; }
    n=$(gunzip -c "$manifest" | wc -l); [ "$n" -lt "$nj" ] || n=$nj   # at most one job per song
    log "Stage 4: features of $split on $device, $n jobs -> $out (logs: $feats/log/$split.*.log)"
    $cuda_cmd --gpu $ngpu JOB=1:$n "$feats/log/$split.JOB.log" \
      python3 -m songbloom.bin.extract_features --device "$device" \
        --manifest "$manifest" --output-dir "$feats" --subset "$split" \
        --part JOB --num-parts "$n" --vae-config "$vae_config" --vae-ckpt "$vae_ckpt" --vae-prefix "$vae_prefix" \
        --muq-dir "$muq_dir" --codebook "$codebook" --progress false
    if [ "$n" -gt 1 ]; then
      parts=()
      for j in $(seq "$n"); do parts+=("$feats/cuts_$split.$j.jsonl.gz"); done
      cat "${parts[@]}" > "$out"   # gzip members concatenate into one JSONL manifest
      rm -f "${parts[@]}"
      cat "$feats"/rejects_"$split".*.tsv | awk 'NR == 1 || !/^id\t/' > "$feats/rejects_$split.tsv"
      rm -f "$feats"/rejects_"$split".*.tsv
    fi
    log "  $out: $(gunzip -c "$out" | wc -l) songs, $(($(wc -l < "$feats/rejects_$split.tsv") - 1)) rejected (${SECONDS}s)"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: training ($mode${init_from:+ from $init_from}) on $device -> $model_dir (log: $model_dir/log/train.log)"
  $cuda_cmd --gpu $ngpu "$model_dir/log/train.log" \
    python3 -m songbloom.bin.train --device "$device" --config "$model_config" "${config_opts[@]}" \
      --cuts "$feats/cuts_train.jsonl.gz" --dev-manifest "$feats/cuts_dev.jsonl.gz" --exp-dir "$model_dir" \
      --mode "$mode" ${init_from:+--checkpoint "$init_from"} --num-iters "$num_iters" --lr "$lr" \
      --warmup $((num_iters / 10)) --max-tokens "$max_tokens" --save-every-n $((num_iters / 4)) --seed "$seed" \
      --dtype "$dtype" --gradient-checkpointing "$gradient_checkpointing"
  grep -h "validation" "$model_dir/log/train.log" | tail -n 1 | sed 's/^.*INFO [^ ]* /  last /' || true
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "Stage 6: average the last $avg checkpoints -> $model_dir/model-avg$avg.pt"
  python3 -m songbloom.bin.average --exp-dir "$model_dir" --avg "$avg" ${init_from:+--base "$init_from"}
fi

gen_dir=$exp_dir/generate/$system
if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "Stage 7: generate the test songs' lyrics on $device -> $gen_dir (log: $gen_dir/log/infer.log)"
  $decode_cmd --gpu $ngpu "$gen_dir/log/infer.log" \
    python3 -m songbloom.bin.infer --device "$device" --config "$model_dir/songbloom.yaml" \
      --ckpt-path "$model_dir/model-avg$avg.pt" --input-jsonl "$prepared/songs_test.jsonl" --output-dir "$gen_dir" \
      --n-samples "$n_samples" --max-duration "$max_duration" --seed "$seed" --output-format wav --progress false
  log "  $(find "$gen_dir" -maxdepth 1 -name '*.wav' | wc -l) songs (${SECONDS}s)"
fi

if [ "$stage" -le 8 ] && [ "$stop_stage" -ge 8 ]; then
  if [ ! -f "$phone_model_dir/model.pt" ]; then
    log "Stage 8a: a phone recognizer for sung audio ($phone_songs mini songs) -> $phone_model_dir"
    python3 "$SHIRABE_ROOT/local/make_mini_corpus.py" --output-dir "$data_dir/phone_songs" --parts songs \
      --num-songs "$phone_songs" --seed $((seed + 1)) > /dev/null
    python3 -m songbloom.bin.prepare_sung_phone_corpus --songs-dir "$data_dir/phone_songs/songs" \
      --output-dir "$data_dir/phone_corpus"
    $cuda_cmd --gpu $ngpu "$phone_model_dir/log/train.log" \
      python3 -m shirabe.bin.train_phone_recognizer --device "$device" --corpus-dir "$data_dir/phone_corpus" \
        --exp-dir "$phone_model_dir" --seed "$seed" --num-epochs 60 --batch-size 8
  fi
  log "Stage 8: evaluate $system on $device -> $results, $exp_dir/report/index.html (log: $exp_dir/log/evaluate.log)"
  $decode_cmd --gpu $ngpu "$exp_dir/log/score_dev.log" \
    python3 -m songbloom.bin.score_dev --device "$device" --config "$model_dir/songbloom.yaml" \
      --checkpoint "$model_dir/model-avg$avg.pt" --cuts "$feats/cuts_test.jsonl.gz" --output "$gen_dir/dev_metrics.json"
  $decode_cmd --gpu $ngpu "$exp_dir/log/evaluate.log" \
    python3 -m songbloom.bin.evaluate --device "$device" --generated-dir "$gen_dir" \
      --jsonl "$prepared/songs_test.jsonl" --reference-manifest "$prepared/songs_recordings_test.jsonl.gz" \
      --phone-model-dir "$phone_model_dir" --muq-dir "$muq_dir" --dev-metrics "$gen_dir/dev_metrics.json" \
      --max-duration "$max_duration" --system "$system" --results "$results" --report-dir "$exp_dir/report"
  tail -n 3 "$exp_dir/log/evaluate.log" | sed 's/^.*INFO [^ ]* /  /'
  log "  $results, $exp_dir/report/index.html (${SECONDS}s)"
fi
