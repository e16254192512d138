#!/usr/bin/env bash
# Japanese zero-shot TTS with ZipVoice, from a corpus to a trained model.
#
# Runs on the embedded mini corpus by default. You can safely remove data/ and
# exp/ and run this script again; finished stages are skipped.
#
#   ./run.sh                          # all stages
#   ./run.sh --stage 0 --stop-stage 0 # only build the corpus
set -euo pipefail

stage=0
stop_stage=100
dataset=mini          # mini (embedded, generated offline)
data_dir=data         # everything this recipe prepares goes here
seed=0
num_speakers=10       # mini corpus size
sentences_per_speaker=30

help_message="Usage: $0 [options]
  --stage N                   first stage to run (default: $stage)
  --stop-stage N              last stage to run (default: $stop_stage)
  --dataset NAME              corpus: mini (default: $dataset)
  --data-dir DIR              where prepared data goes (default: $data_dir)
  --seed N                    seed of the mini corpus (default: $seed)
  --num-speakers N            mini corpus voices (default: $num_speakers)
  --sentences-per-speaker N   mini corpus sentences per voice (default: $sentences_per_speaker)

Stages:
  0  corpus: generate the mini corpus (speech part) -> \$data_dir/mini/speech/{train,dev,test}.tsv"

. ./path.sh
. utils/parse_options.sh

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

corpus_dir=$data_dir/$dataset

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "Stage 0: corpus ($dataset) -> $corpus_dir"
  case $dataset in
    mini)
      python3 ../../local/make_mini_corpus.py --output-dir "$corpus_dir" --parts speech \
        --seed "$seed" --num-speakers "$num_speakers" \
        --sentences-per-speaker "$sentences_per_speaker"
      ;;
    *)
      echo "$0: --dataset $dataset is not supported (choose: mini)" >&2
      exit 2
      ;;
  esac
  for split in train dev test; do
    log "  $corpus_dir/speech/$split.tsv: $(wc -l < "$corpus_dir/speech/$split.tsv") utterances"
  done
fi

log "Done: stages $stage..$stop_stage. The corpus is in $corpus_dir."
log "Next stages (manifests, features, tokens, training, averaging, inference) build on it."
