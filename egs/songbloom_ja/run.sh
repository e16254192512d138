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
codebook_size=16384       # sketch ids (the released models: 16384)
vq_steps=2000
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
  --codebook FILE                 sketch codebook to use (default: trained in stage 3)
  --muq-layer N                   MuQ layer of the trained codebook (default: $muq_layer = last)
  --codebook-size K               sketch ids (default: $codebook_size; the mini corpus needs fewer)
  --vq-steps N                    k-means updates (default: $vq_steps)
  --nj N                          feature jobs per split (default: $nj)
  --use-gpu true|false            codebook and feature jobs ask for a GPU (default: $use_gpu)
  --device DEVICE                 auto, cpu, cuda, cuda:N or mps (default: $device)

Stages:
  0  corpus: the mini corpus's songs part -> \$data_dir/mini (jacappella: uses --corpus-dir)
  1  preparation: lyrics from the lead part's score with phrase punctuation, style prompts,
     splits -> \$data_dir/prepared (lhotse manifests, SongBloom JSONL, songs.tsv, rejects.tsv)
  2  codecs: stand-in VAE and MuQ when the released ones are not given -> \$exp_dir/codecs
  3  sketch codebook: k-means over MuQ frames of the training songs -> \$exp_dir/vq/codebook.pt
  4  features: VAE latents, sketch ids, prompt latents -> \$data_dir/features (lhotse)
Jobs write their logs under the stage's log/ directory."

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
