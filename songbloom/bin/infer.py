"""Generate songs with SongBloom from a JSONL of lyrics and style prompts (upstream's input format).

One song per line, upstream's fields::

    {"idx": "kaeru", "lyrics": "[intro] , [verse] かえるのうたが、きこえてくるよ。 [outro]", "prompt_wav": "prompts/a.wav"}

``lyrics`` are Japanese lyrics in SongBloom's format (structure tags, ``.``/``,``
separators, text; read by the G2P) or already SongBloom symbols (every
space-separated item a vocabulary symbol: passed through unchanged).
``prompt_wav`` is a 10 s style prompt (a relative path is read from the JSONL's
folder; the first 10 s of a longer file; at least 1 s; ``null`` for none).

    python -m songbloom.bin.infer --config songbloom_full_150s.yaml --input-jsonl songs.jsonl \\
        --output-dir out --dtype bfloat16

writes ``out/{idx}_s{i}.{fmt}`` (48 kHz stereo), ``out/generated.jsonl`` (one
record per sample) and ``out/failures.tsv`` (lines that produced nothing, and
why). A bad line (invalid JSON, a missing field, a prompt that is missing,
silent or too short, lyrics the vocabulary cannot spell) is logged and listed;
the other lines still generate, and the exit status is 1. Sample ``i`` of every
line uses seed ``--seed + i``: the same seed gives the same song again.
Sampling options left out take the config's ``inference:`` values.
"""

from __future__ import annotations

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

DTYPES = ("float32", "bfloat16")
FORMATS = ("wav", "flac", "mp3")


def _config_default(key: str, released) -> str:
    return f"default: the config's inference.{key}; {released} in the released config"


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.infer", description=__doc__)
    p.add_argument("--config", type=Path, required=True,
                   help="model config yaml in the released schema, e.g. songbloom_full_150s.yaml (required)")
    p.add_argument("--input-jsonl", type=Path, required=True,
                   help="songs, one JSON per line with idx, lyrics, prompt_wav (required)")
    p.add_argument("--output-dir", type=Path, required=True, help="where the songs and records go (required)")
    p.add_argument("--ckpt-path", type=Path, default=None,
                   help="model .pt (a plain state dict; default: the config's pretrained_path)")
    p.add_argument("--local-dir", type=Path, default=None,
                   help="the folder '???' stands for in the config (default: the config's folder)")
    p.add_argument("--lora-path", type=Path, default=None,
                   help="LoRA adapter file written by training, merged into the model (default: none)")
    add_trust_checkpoint_argument(p)
    p.add_argument("--n-samples", type=int, default=2, help="songs generated per line")
    p.add_argument("--seed", type=int, default=0, help="sample i of every line uses seed + i")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="precision of the diffusion model (the VAE always runs in float32)")
    add_device_argument(p, "generation")
    add_num_threads_argument(p)
    p.add_argument("--max-duration", type=float, default=None,
                   help="song length budget in seconds, 25 frames each (default: the config's max_dur, "
                        "150 for the released model; upstream's infer.py adds 10 s to it)")
    p.add_argument("--output-format", choices=FORMATS, default="flac", help="audio format of the songs")
    p.add_argument("--cfg-coef", type=float, default=None,
                   help="classifier-free guidance of the LM and the DiT (" + _config_default("cfg_coef", 1.5) + ")")
    p.add_argument("--temp", type=float, default=None,
                   help="sketch-token sampling temperature; 0 takes the argmax (" + _config_default("temp", 0.9) + ")")
    p.add_argument("--top-k", type=int, default=None,
                   help="sample among the k likeliest sketch tokens; 0: all (" + _config_default("top_k", 100) + ")")
    p.add_argument("--top-p", type=float, default=None,
                   help="nucleus sampling when > 0, instead of top-k (" + _config_default("top_p", 0.0) + ")")
    add_bool_argument(p, "--penalty-repeat", None,
                      "divide the logits of recent sketch tokens by 1.1 (" + _config_default("penalty_repeat", "true")
                      + ")")
    p.add_argument("--penalty-window", type=int, default=None,
                   help="recent tokens the repetition penalty looks at (" + _config_default("penalty_window", 50) + ")")
    p.add_argument("--steps", type=int, default=None,
                   help="Euler steps of the DiT per patch (" + _config_default("steps", 36) + ")")
    p.add_argument("--diff-temp", type=float, default=None,
                   help="noise temperature of the DiT sampler (" + _config_default("diff_temp", 0.95) + ")")
    p.add_argument("--dit-cfg-type", choices=("h", "global", "none"), default=None,
                   help="DiT guidance: h (null h and sketch), global (two runs) or none ("
                        + _config_default("dit_cfg_type", "h") + ")")
    add_bool_argument(p, "--allow-unknown", False,
                      "drop (and log) lyric symbols the vocabulary lacks instead of failing the line")
    p.add_argument("--user-dict", type=Path, default=None,
                   help="MeCab CSV user dictionary for the Japanese G2P (default: none)")
    add_bool_argument(p, "--progress", True, "a progress bar per song (patches, with ETA)")
    add_bool_argument(p, "--save-sketch", False,
                      "also write each sample's sketch ids ({idx}_s{i}.sketch.npy), for songbloom.bin.recover_codebook")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    import torch

    from songbloom.inference import (
        SamplingOptions,
        generate_songs,
        load_for_generation,
        read_requests,
    )

    if not args.config.is_file():
        raise InputError(f"{args.config}: no such config file")
    if args.n_samples < 1:
        raise InputError(f"--n-samples must be at least 1, got {args.n_samples}")
    if args.num_threads < 1:
        raise InputError(f"--num-threads must be at least 1, got {args.num_threads}")
    if args.user_dict is not None and not args.user_dict.is_file():
        raise InputError(f"{args.user_dict}: no such user dictionary")
    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    requests, failures = read_requests(args.input_jsonl)
    model = load_for_generation(args.config, args.ckpt_path, adapter=args.lora_path, device=device,
                                dtype=getattr(torch, args.dtype), local_dir=args.local_dir,
                                trust=args.trust_checkpoint)
    options = SamplingOptions.from_config(
        model.config, args.max_duration, cfg_coef=args.cfg_coef, temp=args.temp, top_k=args.top_k, top_p=args.top_p,
        penalty_repeat=args.penalty_repeat, penalty_window=args.penalty_window, steps=args.steps,
        diff_temp=args.diff_temp, dit_cfg_type=args.dit_cfg_type)
    logger.info("device %s, %s; %d line(s), %d sample(s) each; budget %.1f s; %s", device, args.dtype,
                len(requests) + len(failures), args.n_samples, options.max_frames / 25,
                ", ".join(f"{k} {v}" for k, v in options.generate_kwargs().items() if k != "max_frames"))
    outputs = generate_songs(model, requests, args.output_dir, options, n_samples=args.n_samples, seed=args.seed,
                             output_format=args.output_format, allow_unknown=args.allow_unknown,
                             user_dict=args.user_dict, failures=failures, progress=args.progress,
                             save_sketch=args.save_sketch)
    if outputs.failures:
        logger.error("%d line(s) or sample(s) failed; see %s", len(outputs.failures),
                     outputs.out_dir / "failures.tsv")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
