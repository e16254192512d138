#!/usr/bin/env python3
"""Generate songs with a LeLM checkpoint: lyrics, a style description and an optional prompt → audio.

    python -m songgeneration.bin.generate --ckpt-dir exp/songgen/merged --input-jsonl songs.jsonl \\
        --save-dir exp/songgen/generated --generate-type mixed \\
        --tokenizer mini --tokenizer-path exp/tokenizer/mini.safetensors

Each input line (upstream's JSONL): ``idx``, ``gt_lyric``, optional ``descriptions``, and at most
one of ``prompt_audio_path`` (its first ``prompt_len`` seconds, 10 s for the released models) and
``auto_prompt_audio_type`` (needs --auto-prompt-dir). Writes ``SAVE_DIR/audios/<idx>.<format>``
(plus ``<idx>_vocal`` and ``<idx>_bgm`` with --generate-type separate), the tokens
``SAVE_DIR/tokens/<idx>.npy`` (int64 [3, T]: mixed, vocal, accompaniment, cut at the end of the
song) and ``SAVE_DIR/generated.jsonl`` (per song: frames, seconds, whether the end-of-song token
was reached, the files, the seed). Runs on the CPU or a GPU; sampling defaults are upstream's
(guidance 1.5, temperature 0.8, top-k 5000, repetition penalty 1.1 over the last 50 steps, the
prompt's mixed ids banned from the mixed stream).
"""

from __future__ import annotations

import json
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

DTYPES = ("auto", "float32", "bfloat16", "float16")


def get_parser() -> ArgumentParser:
    from songgeneration.inference import GENERATE_TYPES

    p = ArgumentParser(prog="python -m songgeneration.bin.generate", description=__doc__)
    p.add_argument("--ckpt-dir", type=Path, required=True,
                   help="checkpoint folder with config.yaml and model.pt (required)")
    p.add_argument("--input-jsonl", type=Path, required=True, help="songs to generate, one JSON per line (required)")
    p.add_argument("--save-dir", type=Path, required=True, help="output folder (required)")
    p.add_argument("--generate-type", choices=GENERATE_TYPES, default="mixed",
                   help="mixed: the song; vocal / bgm: one stem; separate: the song and both stems")
    p.add_argument("--tokenizer", default="mini", help="audio tokenizer name (see songgeneration.tokenizer)")
    p.add_argument("--tokenizer-path", type=Path, required=True,
                   help="the audio tokenizer's file or folder: encodes prompts, decodes audio (required)")
    p.add_argument("--vocoder-path", type=Path, default=None,
                   help="mini tokenizer only: a Vocos mel vocoder folder (default: Griffin-Lim)")
    p.add_argument("--text-tokenizer-dir", type=Path, default=None,
                   help="Qwen2 tokenizer folder (default: the config's token_path, beside the checkpoint)")
    p.add_argument("--auto-prompt-dir", type=Path, default=None,
                   help="prompt library for auto_prompt_audio_type: <type>.npy files of [3, P] or [N, 3, P] tokens "
                        "(default: none, such lines are errors)")
    p.add_argument("--format", choices=("flac", "wav", "mp3"), default="flac", help="audio file format")
    p.add_argument("--seed", type=int, default=0, help="seed; song i of the input uses seed + i")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="longest song generated (default: the config's max_dur); generation stops earlier "
                        "at the end-of-song token")
    p.add_argument("--cfg-coef", type=float, default=1.5, help="classifier-free guidance coefficient")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the mixed stream")
    p.add_argument("--top-k", type=int, default=5000, help="top-k of the mixed stream (1: arg-max)")
    p.add_argument("--top-p", type=float, default=0.0, help="nucleus sampling of the mixed stream (0: use top-k)")
    add_bool_argument(p, "--record-tokens", True, "apply the repetition penalty to recently generated ids")
    p.add_argument("--record-window", type=int, default=50, help="steps the repetition penalty looks back")
    p.add_argument("--repetition-penalty", type=float, default=1.1, help="logit divisor of recent ids")
    add_bool_argument(p, "--ban-prompt-tokens", True, "never emit the prompt's mixed-stream ids (anti-copy)")
    add_bool_argument(p, "--low-mem", False, "free the language model before decoding (and the tokenizer "
                      "while the language model runs)")
    p.add_argument("--dtype", choices=DTYPES, default="auto",
                   help="language model weights: auto = float16 on CUDA, float32 elsewhere")
    add_bool_argument(p, "--progress", True, "show progress bars")
    add_device_argument(p, "the language model and the audio tokenizer")
    add_trust_checkpoint_argument(p)
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def _dtype(name: str, device):
    import torch

    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    import torch
    from tqdm import tqdm

    from shirabe.audio.io import save_audio
    from songgeneration import inference as inf
    from songgeneration.data.prepare import save_npy
    from songgeneration.models import SamplingParams, generate, load_lelm, null_conditions
    from songgeneration.tokenizer import FRAME_RATE, SAMPLE_RATE, load_tokenizer

    torch.set_num_threads(args.num_threads)
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration {args.duration}: must be positive")
    device = resolve_device(args.device)
    requests = inf.read_requests(args.input_jsonl, args.auto_prompt_dir)
    lyrics = inf.check_lyrics(requests, inf.lyric_tags(args.ckpt_dir))
    options = {"vocoder_path": args.vocoder_path, "trust": args.trust_checkpoint} if args.tokenizer == "mini" else {}

    def tokenizer_():
        return load_tokenizer(args.tokenizer, args.tokenizer_path, device, **options)

    tokenizer = tokenizer_()
    codebook_size = tokenizer.codebook_size
    from songgeneration.models.config import load_config

    config = load_config(args.ckpt_dir / "config.yaml")
    prompts = []
    for i, r in enumerate(requests):
        if r.prompt_audio_path is not None:
            prompts.append(inf.prompt_tokens(tokenizer, r.prompt_audio_path, config.prompt_frames, config.special_id))
        elif r.auto_prompt_type is not None:
            prompts.append(inf.auto_prompt(args.auto_prompt_dir, r.auto_prompt_type, args.seed + i))
        else:
            prompts.append(None)
    if args.low_mem:
        inf.free_model(tokenizer)
        tokenizer = None

    lm = load_lelm(args.ckpt_dir, device, _dtype(args.dtype, device), args.text_tokenizer_dir)
    if lm.condition_provider.lyric.tokenizer is None:
        raise InputError(f"{args.ckpt_dir}: no Qwen2 tokenizer folder at the config's token_path "
                         f"'{config.lyric.token_path}' (give --text-tokenizer-dir)")
    inf.limit_codes(lm, codebook_size)
    params = SamplingParams(cfg_coef=args.cfg_coef, temperature=args.temperature, top_k=args.top_k,
                            top_p=args.top_p, record_tokens=args.record_tokens, record_window=args.record_window,
                            repetition_penalty=args.repetition_penalty)
    frames = int((args.duration if args.duration is not None else config.max_dur) * FRAME_RATE)
    if frames < 1:
        raise InputError(f"{frames} frames to generate: raise --duration")
    (args.save_dir / "tokens").mkdir(parents=True, exist_ok=True)
    records, all_tokens = [], []
    for i, (r, lyric, prompt) in enumerate(tqdm(list(zip(requests, lyrics, prompts)), desc="generate",
                                                unit="song", disable=not args.progress)):
        seed = args.seed + i
        torch.manual_seed(seed)
        generator = torch.Generator(device=device).manual_seed(seed)
        cond = lm.make_conditions([lyric], [r.descriptions], None if prompt is None else prompt[None])
        null = null_conditions(lm, r.descriptions)
        ban = prompt[0] if (prompt is not None and args.ban_prompt_tokens) else None
        result = generate(lm, cond, null, frames, params, ban_ids=ban, generator=generator)
        tokens = result.tokens[0].cpu().long()
        save_npy(args.save_dir / "tokens" / f"{r.idx}.npy", tokens.numpy())
        all_tokens.append(tokens)
        n = int(tokens.shape[1])
        records.append({"idx": r.idx, "frames": n, "seconds": n / FRAME_RATE,
                        "eos": bool((result.codes == config.eos_id).any()), "max_frames": frames,
                        "tokens": f"tokens/{r.idx}.npy", "audio": [], "seed": seed,
                        "generate_type": args.generate_type, "gt_lyric": lyric, "descriptions": r.descriptions,
                        "prompt": str(r.prompt_audio_path) if r.prompt_audio_path else r.auto_prompt_type})
    if args.low_mem:
        inf.free_model(lm)
        lm = None
    if tokenizer is None:
        tokenizer = tokenizer_()

    for rec, tokens in tqdm(list(zip(records, all_tokens)), desc="decode", unit="song", disable=not args.progress):
        if tokens.shape[1] == 0:
            logger.warning("%s: the end of song came first; no audio", rec["idx"])
            continue
        for suffix, wav in inf.decode_audio(tokenizer, tokens, args.generate_type).items():
            path = args.save_dir / "audios" / f"{rec['idx']}{suffix}.{args.format}"
            save_audio(path, wav.detach().cpu().float().t().numpy(), SAMPLE_RATE)
            rec["audio"].append(str(path.relative_to(args.save_dir)))
    out = args.save_dir / "generated.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    logger.info("generated %d song(s) (%d reached the end-of-song token) in %s", len(records),
                sum(r["eos"] for r in records), args.save_dir)
    return 0


if __name__ == "__main__":
    run_main(main)
