#!/usr/bin/env python3
"""Evaluate a SongGeneration system: teacher-forced scores, generated songs, log-mel distances.

    python -m songgeneration.bin.evaluate --ckpt-dir exp/songgen/merged --prepared-dir data/songgen/prepared \\
        --generated-dir exp/songgen/generated --input-jsonl data/songgen/test.jsonl \\
        --tokenizer mini --tokenizer-path exp/tokenizer/mini.safetensors --results RESULTS.md --system lora

1. Teacher-forced cross-entropy and top-1 / top-10 accuracy per stream (mixed, vocal,
   accompaniment) of the checkpoint on the held-out songs of --test-manifest (the prepared-data
   format; paths relative to --prepared-dir), computed by the training objective without dropout.
2. From --generated-dir (``generate``'s ``generated.jsonl`` and tokens): frames and seconds per
   song, the share of songs that ended by the end-of-song token, and for the songs generated with a
   ``prompt_audio_path`` in --input-jsonl, the share of generated mixed-stream tokens that occur
   among the prompt's mixed ids (the prompt encoded by the audio tokenizer as generation does,
   its first prompt_len seconds; 0 with the prompt ban on).
3. For the songs with a ``prompt_audio_path`` (their reference recording): the log-mel distance of
   the tokenizer's round trip (reference → codes → audio; the best the tokenizer allows) and of the
   generated audio to the reference, both over the generated length (see songgeneration.evaluate
   for the definition).

Writes the table as section ``songgeneration:<system>`` of --results (replaced on a rerun) and all
numbers as JSON beside it (``<results stem>.songgeneration.<system>.json``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songgeneration.bin.evaluate", description=__doc__)
    p.add_argument("--ckpt-dir", type=Path, required=True,
                   help="checkpoint folder with config.yaml and model.pt (required)")
    p.add_argument("--prepared-dir", type=Path, required=True,
                   help="prepared-data folder the manifest's paths are relative to (required)")
    p.add_argument("--test-manifest", type=Path, default=None,
                   help="held-out songs in the prepared-data format (default: PREPARED_DIR/manifest_test.jsonl)")
    p.add_argument("--generated-dir", type=Path, required=True,
                   help="output folder of songgeneration.bin.generate (required)")
    p.add_argument("--input-jsonl", type=Path, required=True,
                   help="the input JSONL the songs were generated from (idx, prompt_audio_path) (required)")
    p.add_argument("--tokenizer", default="mini", help="audio tokenizer name (see songgeneration.tokenizer)")
    p.add_argument("--tokenizer-path", type=Path, required=True,
                   help="the audio tokenizer's file or folder (required)")
    p.add_argument("--vocoder-path", type=Path, default=None,
                   help="mini tokenizer only: a Vocos mel vocoder folder for the round trip (default: Griffin-Lim)")
    p.add_argument("--text-tokenizer-dir", type=Path, default=None,
                   help="Qwen2 tokenizer folder (default: the config's token_path, beside the checkpoint)")
    p.add_argument("--batch-size", type=int, default=2, help="songs per teacher-forced batch")
    p.add_argument("--seed", type=int, default=0, help="seed set before the teacher-forced pass")
    p.add_argument("--results", type=Path, required=True, help="RESULTS.md to update (required)")
    p.add_argument("--system", default=None, help="name of the evaluated system (default: the --generated-dir name)")
    add_bool_argument(p, "--progress", True, "show progress bars")
    add_device_argument(p, "the language model and the audio tokenizer")
    add_trust_checkpoint_argument(p)
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def load_test_songs(manifest: Path, prepared: Path, code_size: int, prompt_frames: int):
    """The songs of ``manifest`` (paths relative to ``prepared``), checked by the training reader."""
    from songgeneration.training.data import MANIFEST_NAME, load_manifest

    if not manifest.is_file():
        raise InputError(f"{manifest}: test manifest not found")
    if manifest.name == MANIFEST_NAME and manifest.resolve().parent == prepared.resolve():
        return load_manifest(prepared, code_size, prompt_frames)
    lines = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            item = None
        if isinstance(item, dict):
            for key in ("tokens", "prompt"):
                if isinstance(item.get(key), str):
                    item[key] = str(prepared.resolve() / item[key])
            line = json.dumps(item, ensure_ascii=False)
        lines.append(line)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / MANIFEST_NAME
        copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            return load_manifest(tmp, code_size, prompt_frames)
        except InputError as exc:
            raise InputError(str(exc).replace(str(copy), str(manifest))) from None


def _json_default(value):
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, ensure_ascii=False, indent=1, default=_json_default)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    import numpy as np
    import torch
    from tqdm import tqdm

    from shirabe.eval.results_md import upsert_section
    from songgeneration import evaluate as ev
    from songgeneration import inference as inf
    from songgeneration.data.stems import find_stems
    from songgeneration.models import load_lelm
    from songgeneration.models.config import load_config
    from songgeneration.tokenizer import HOP_SAMPLES, SAMPLE_RATE, load_tokenizer, read_stereo_48k
    from songgeneration.training.data import fixed_batches, text_ids_of

    torch.set_num_threads(args.num_threads)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    system = args.system or args.generated_dir.resolve().name
    device = resolve_device(args.device)
    config = load_config(args.ckpt_dir / "config.yaml")
    manifest = args.test_manifest or args.prepared_dir / "manifest_test.jsonl"
    songs = load_test_songs(manifest, args.prepared_dir, config.code_size, config.prompt_frames)
    generated = ev.read_generated(args.generated_dir)
    prompts = ev.read_prompt_paths(args.input_jsonl)
    missing = [g.idx for g in generated if g.idx not in prompts]
    if missing:
        raise InputError(f"{args.input_jsonl}: no line for the generated song '{missing[0]}' "
                         f"({len(missing)} missing)")

    # 1. teacher-forced scores
    lm = load_lelm(args.ckpt_dir, device, torch.float32, args.text_tokenizer_dir)
    if lm.condition_provider.lyric.tokenizer is None:
        raise InputError(f"{args.ckpt_dir}: no Qwen2 tokenizer folder at the config's token_path "
                         f"'{config.lyric.token_path}' (give --text-tokenizer-dir)")
    batches = fixed_batches(songs, args.batch_size, text_ids_of(lm), config.code_size, config.prompt_frames)
    tf = ev.teacher_forced_scores(lm, batches, device, args.seed)
    inf.free_model(lm)
    lm = None

    # 2. generated songs and the prompt ban
    options = {"vocoder_path": args.vocoder_path, "trust": args.trust_checkpoint} if args.tokenizer == "mini" else {}
    tokenizer = load_tokenizer(args.tokenizer, args.tokenizer_path, device, **options)
    ban, per_song = {}, {}
    for g in generated:
        rec = {"frames": g.frames, "seconds": g.seconds, "eos": g.eos}
        ref = prompts[g.idx]
        if ref is not None:
            p = inf.prompt_tokens(tokenizer, ref, config.prompt_frames, config.special_id)
            ban[g.idx] = ev.ban_counts(g.tokens[0], p[0].numpy())
            rec["prompt_tokens_copied"], rec["prompt_tokens_generated"] = ban[g.idx]
        per_song[g.idx] = rec
    gen = ev.generation_summary(generated, ban)

    # 3. audio against the reference recording, over the generated length
    rt, gd = [], []
    for g in tqdm([g for g in generated if prompts[g.idx] is not None and g.frames > 0], desc="audio",
                  unit="song", disable=not args.progress):
        ref_path = prompts[g.idx]
        n = g.frames * HOP_SAMPLES
        ref = read_stereo_48k(ref_path)[:, :n]
        stems = find_stems(ref_path)
        stem_wavs = tuple(read_stereo_48k(s)[:, :n] for s in stems) if stems is not None else None
        trip = ev.round_trip(tokenizer, ref, stem_wavs).detach().cpu().float()
        wav = read_stereo_48k(g.audio)
        per_song[g.idx]["log_mel_round_trip"] = ev.log_mel_distance(ref, trip, SAMPLE_RATE, n)
        per_song[g.idx]["log_mel_generated"] = ev.log_mel_distance(ref, wav, SAMPLE_RATE, n)
        rt.append(per_song[g.idx]["log_mel_round_trip"])
        gd.append(per_song[g.idx]["log_mel_generated"])
    audio = {"songs": len(rt), "round_trip_mean": float(np.mean(rt)) if rt else float("nan"),
             "generated_mean": float(np.mean(gd)) if gd else float("nan")}

    result = {"system": system, "tf": tf, "gen": gen, "audio": audio, "songs": per_song,
              "settings": {"ckpt_dir": str(args.ckpt_dir), "test_manifest": str(manifest),
                           "generated_dir": str(args.generated_dir), "input_jsonl": str(args.input_jsonl),
                           "tokenizer": args.tokenizer, "tokenizer_path": str(args.tokenizer_path),
                           "seed": args.seed}}
    for group in ("tf", "gen", "audio"):
        for key, value in result[group].items():
            logger.info("%s %s.%s = %s", system, group, key, value)
    json_path = args.results.with_name(f"{args.results.stem}.songgeneration.{system}.json")
    write_json(json_path, result)
    notes = (f"Checkpoint `{args.ckpt_dir}`, held-out songs `{manifest}`, generated `{args.generated_dir}`, "
             f"tokenizer `{args.tokenizer}` (`{args.tokenizer_path}`). CE and accuracies are teacher-forced "
             "(training objective, no dropout, EOS counted). Log-mel distance: mean |difference| of the 100-bin "
             "Vocos log-mel at 24 kHz (nats) against the reference recording (the prompt audio), over the "
             f"generated length. All numbers: `{json_path.name}`.")
    upsert_section(args.results, f"songgeneration:{system}", ev.markdown_table(system, result, notes))
    logger.info("wrote section songgeneration:%s of %s and %s", system, args.results, json_path)
    return 0


if __name__ == "__main__":
    run_main(main)
