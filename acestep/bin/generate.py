"""Generate music with ACE-Step v1 from a checkpoint folder in the released layout.

Tasks: text2music (prompt + lyrics → song), audio2audio (start from a reference's latents),
retake (a variation of a seed), repaint (regenerate a time range of a source) and extend (add
new music before and/or after a source). The output format follows the extension of
``--output`` (wav, flac, mp3; 48 kHz stereo); ``<name>_input_params.json`` beside it records every
setting, the seeds, the timings, the device and dtype and the package version.

Example:
  python -m acestep.bin.generate --checkpoint-dir ACE-Step-v1-3.5B \\
      --prompt "j-pop, female vocal, piano, upbeat" --lyrics-file song.txt \\
      --duration 60 --seed 42 --output out/song.wav
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)

TASKS = ("text2music", "audio2audio", "retake", "repaint", "extend")
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
FORMATS = ("wav", "flac", "mp3")


def get_parser() -> ArgumentParser:
    from acestep.sampling.options import add_guidance_arguments
    from acestep.text.lyrics import add_lyrics_arguments

    p = ArgumentParser(prog="python -m acestep.bin.generate", description=__doc__)
    p.add_argument("--checkpoint-dir", required=True, metavar="DIR",
                   help="folder with ace_step_transformer/, music_dcae_f8c8/, music_vocoder/, umt5-base/")
    p.add_argument("--prompt", required=True, help="comma-separated tags (genre, instruments, mood, voice)")
    lyrics = p.add_mutually_exclusive_group(required=True)
    lyrics.add_argument("--lyrics", help='lyrics text (\\n or real newlines between lines); "" or [inst] '
                        "for an instrumental; this or --lyrics-file is required (default: none)")
    lyrics.add_argument("--lyrics-file", metavar="FILE", help="UTF-8 text file with the lyrics (default: none)")
    add_lyrics_arguments(p)
    p.add_argument("--duration", type=float, default=60.0, metavar="S",
                   help="seconds of music (text2music, retake); the other tasks take the length of their audio")
    p.add_argument("--output", required=True, metavar="FILE", help="output audio file: .wav, .flac or .mp3")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: a random one, recorded in the JSON)")
    p.add_argument("--infer-step", type=int, default=60, help="denoising steps")
    add_guidance_arguments(p)
    p.add_argument("--task", choices=TASKS, default="text2music", help="what to generate")
    p.add_argument("--ref-audio", metavar="FILE", help="audio2audio: reference audio (default: none)")
    p.add_argument("--ref-audio-strength", type=float, default=0.5,
                   help="audio2audio: how much of the reference is kept, in [0, 1)")
    p.add_argument("--src-audio", metavar="FILE", help="repaint / extend: source audio (default: none)")
    p.add_argument("--repaint-start", type=float, default=0.0, metavar="S", help="repaint: start of the range (s)")
    p.add_argument("--repaint-end", type=float, default=0.0, metavar="S", help="repaint: end of the range (s)")
    p.add_argument("--extend-left", type=float, default=0.0, metavar="S", help="extend: seconds added before")
    p.add_argument("--extend-right", type=float, default=0.0, metavar="S", help="extend: seconds added after")
    p.add_argument("--retake-variance", type=float, default=0.5,
                   help="retake / repaint / extend: how far from the original (0–1; 1 for a fresh extension)")
    p.add_argument("--retake-seed", type=int, default=None,
                   help="retake / repaint / extend: seed of the second noise (default: a random one)")
    p.add_argument("--lora-path", metavar="PATH", help="LoRA folder or pytorch_lora_weights.safetensors to merge (default: none)")
    p.add_argument("--lora-weight", type=float, default=1.0, help="scale of the merged LoRA")
    p.add_argument("--dtype", choices=("auto", *DTYPES), default="auto",
                   help="model precision: auto = bf16 on CUDA, fp32 elsewhere")
    add_device_argument(p, "the models")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def read_lyrics(args) -> tuple[str, str]:
    """(lyrics, source name for error messages)."""
    if args.lyrics_file is None:
        return args.lyrics.replace("\\n", "\n"), "--lyrics"
    path = Path(args.lyrics_file)
    if not path.is_file():
        raise InputError(f"{path}: lyrics file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e})") from None
    if not text.strip():
        raise InputError(f'{path}: lyrics file is empty (for an instrumental pass --lyrics "" or --lyrics "[inst]")')
    return text, str(path)


def check_args(args) -> str:
    """Validate the options; returns the output format."""
    fmt = Path(args.output).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"{args.output}: unsupported output format '.{fmt}' (use .wav, .flac or .mp3)")
    if fmt == "mp3":
        import soundfile as sf

        if "MP3" not in sf.available_formats():
            raise InputError(f"{args.output}: this libsndfile ({sf.__libsndfile_version__}) cannot write mp3 "
                             "(use .wav or .flac)")
    if args.infer_step < 1:
        raise InputError(f"--infer-step must be at least 1, got {args.infer_step}")
    if args.task in ("text2music", "retake") and args.duration <= 0:
        raise InputError(f"--duration must be positive, got {args.duration}")
    if not 0.0 <= args.guidance_interval <= 1.0:
        raise InputError(f"--guidance-interval must lie in [0, 1], got {args.guidance_interval}")
    if not 0.0 <= args.retake_variance <= 1.0:
        raise InputError(f"--retake-variance must lie in [0, 1], got {args.retake_variance}")
    if args.task in ("repaint", "extend") and args.retake_variance <= 0:
        raise InputError(f"--retake-variance must be above 0 for {args.task}, got {args.retake_variance}")
    if args.task == "audio2audio":
        if args.ref_audio is None:
            raise InputError("--task audio2audio needs --ref-audio")
        if not 0.0 <= args.ref_audio_strength < 1.0:
            raise InputError(f"--ref-audio-strength must lie in [0, 1), got {args.ref_audio_strength}")
    if args.task in ("repaint", "extend") and args.src_audio is None:
        raise InputError(f"--task {args.task} needs --src-audio")
    if args.task == "repaint" and not args.repaint_start < args.repaint_end:
        raise InputError(f"--repaint-start ({args.repaint_start}) must be before --repaint-end ({args.repaint_end})")
    if args.task == "extend" and (args.extend_left < 0 or args.extend_right < 0
                                  or args.extend_left + args.extend_right <= 0):
        raise InputError("--task extend needs --extend-left and/or --extend-right (seconds, not negative)")
    for flag, value in (("--ref-audio", args.ref_audio), ("--src-audio", args.src_audio),
                        ("--lora-path", args.lora_path)):
        if value is not None and not Path(value).exists():
            raise InputError(f"{value}: {flag} not found")
    return fmt


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("shirabe")
    except Exception:  # not installed as a distribution
        import shirabe

        return shirabe.__version__


def params_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_input_params.json")


def write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    fmt = check_args(args)
    lyrics, lyrics_source = read_lyrics(args)

    import torch

    from acestep.pipeline import ACEStepPipeline, GenerationRequest
    from acestep.sampling.options import guidance_from_args
    from shirabe.audio.io import save_audio
    from shirabe.cli import resolve_device

    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    dtype_name = args.dtype if args.dtype != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    dtype = getattr(torch, DTYPES[dtype_name])
    seed = args.seed if args.seed is not None else random.randrange(2 ** 31)
    retake_seed = args.retake_seed if args.retake_seed is not None else random.randrange(2 ** 31)

    t0 = time.perf_counter()
    pipe = ACEStepPipeline.from_checkpoint_dir(args.checkpoint_dir, device, dtype, args.lora_path, args.lora_weight)
    load_seconds = time.perf_counter() - t0
    guidance = guidance_from_args(args)
    request = GenerationRequest(
        prompt=args.prompt, lyrics=lyrics, duration=args.duration, task=args.task, seed=seed,
        retake_seed=retake_seed, infer_step=args.infer_step, guidance=guidance, ref_audio=args.ref_audio,
        ref_audio_strength=args.ref_audio_strength, src_audio=args.src_audio, repaint_start=args.repaint_start,
        repaint_end=args.repaint_end, extend_left=args.extend_left, extend_right=args.extend_right,
        retake_variance=args.retake_variance, lyrics_language=args.lyrics_language, romanizer=args.romanizer,
        lyrics_source=lyrics_source)
    result = pipe.generate(request, progress=True)

    output = Path(args.output)
    save_audio(output, result.audio[0].numpy().T, result.sample_rate)
    samples = int(result.audio[0].shape[-1])
    params = {
        "audio_path": str(output), "format": fmt, "task": args.task, "prompt": args.prompt, "lyrics": lyrics,
        "lyrics_file": args.lyrics_file, "lyrics_language": args.lyrics_language, "romanizer": args.romanizer,
        "audio_duration": args.duration, "target_duration": result.duration,
        "output_duration": samples / result.sample_rate, "sample_rate": result.sample_rate,
        "latent_frames": int(result.latents.shape[-1]), "infer_step": args.infer_step,
        "num_denoising_steps": result.num_steps - result.first_step, "first_step": result.first_step,
        "scheduler_type": "euler", "guidance_scale": args.guidance_scale, "cfg_type": args.cfg_type,
        "omega_scale": args.omega_scale, "guidance_interval": args.guidance_interval,
        "guidance_interval_decay": args.guidance_interval_decay, "min_guidance_scale": args.min_guidance_scale,
        "use_erg_tag": args.use_erg_tag, "use_erg_lyric": args.use_erg_lyric,
        "use_erg_diffusion": args.use_erg_diffusion, "guidance_scale_text": args.guidance_scale_text,
        "guidance_scale_lyric": args.guidance_scale_lyric, "actual_seeds": [seed], "retake_seeds": [retake_seed],
        "retake_variance": args.retake_variance, "ref_audio_input": args.ref_audio,
        "ref_audio_strength": args.ref_audio_strength, "src_audio_path": args.src_audio,
        "repaint_start": args.repaint_start, "repaint_end": args.repaint_end, "extend_left": args.extend_left,
        "extend_right": args.extend_right, "lora_name_or_path": args.lora_path, "lora_weight": args.lora_weight,
        "checkpoint_dir": str(args.checkpoint_dir), "device": str(device), "dtype": dtype_name,
        "num_threads": args.num_threads,
        "timecosts": {"load": load_seconds, **result.timings}, "version": package_version(),
        "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
        "arguments": vars(args),
    }
    write_json(params_path(output), params)
    logger.info("wrote %s (%.2f s at %d Hz) and %s", output, samples / result.sample_rate, result.sample_rate,
                params_path(output))
    return 0


if __name__ == "__main__":
    run_main(main)
