"""Generate an accompaniment (or a full mix) for vocal tracks with ACE-Step v1 and a trained model bundle.

For each ``--vocal`` (key = file name without extension and without a trailing ``_vocal``) the
vocal is read at 48 kHz stereo, normalised to ``--loudness`` LUFS, and the model generates audio
exactly as long as it (see :mod:`acestep.accompaniment.inference`):

- ``--lora-path BUNDLE``: a model bundle written by training (``accompaniment_config.json``, the
  LoRA, and in controlnet mode the control encoder); its mode decides how the vocal conditions
  the generation;
- without ``--lora-path``: the untrained base model in image2image mode (the vocal latents in the
  flow's start at ``--ref-strength``), or ``--baseline a2a`` for the released audio2audio task.

Outputs in ``--output-dir``: ``<key>_accompaniment.<fmt>`` and ``<key>_mix.<fmt>`` (vocal + the
accompaniment scaled to the vocal's loudness + ``--mix-offset`` LU, the sum scaled down as a whole
when its peak exceeds 0.98), or only ``<key>_mix.<fmt>`` with ``--output-type mix``; and
``<key>_input_params.json`` with every setting. A generated track loses its constant (DC) offset and is
otherwise written at the level the model produced it, scaled down as a whole only when its peak exceeds 1
(``output_gain`` in the JSON).

Example:
  python -m acestep.bin.generate_accompaniment --checkpoint-dir ACE-Step-v1-3.5B \\
      --lora-path exp/i2i/bundle --vocal song1_vocal.wav --prompt "j-pop, piano, drums, bass" \\
      --output-dir out --seed 42
"""

from __future__ import annotations

import random
import sys
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

FORMATS = ("wav", "flac", "mp3")
OUTPUT_SR = 48000


def loudness_target(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"expected LUFS (e.g. -14) or none, got {text!r}") from None


def get_parser() -> ArgumentParser:
    from acestep.bin.generate import DTYPES
    from acestep.sampling.options import add_guidance_arguments
    from acestep.text.lyrics import add_lyrics_arguments

    p = ArgumentParser(prog="python -m acestep.bin.generate_accompaniment", description=__doc__)
    p.add_argument("--checkpoint-dir", required=True, metavar="DIR",
                   help="folder with ace_step_transformer/, music_dcae_f8c8/, music_vocoder/, umt5-base/")
    p.add_argument("--vocal", required=True, action="append", metavar="FILE",
                   help="vocal track (wav, flac, mp3); repeat for several")
    p.add_argument("--prompt", required=True, help="comma-separated tags of the accompaniment (genre, instruments, mood)")
    lyrics = p.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", default="", help='lyrics of the vocal (\\n between lines); "" for none')
    lyrics.add_argument("--lyrics-file", metavar="FILE", help="UTF-8 text file with the lyrics (default: none)")
    add_lyrics_arguments(p)
    p.add_argument("--lora-path", metavar="BUNDLE_DIR",
                   help="model bundle folder from training (default: none = the untrained base model)")
    p.add_argument("--lora-weight", type=float, default=1.0,
                   help="factor on the bundle's LoRA (on top of its trained alpha/r or alpha/sqrt(r) scaling)")
    p.add_argument("--ref-strength", type=float, default=None,
                   help="image2image: weight s of the vocal in the flow's start s*vocal + (1-s)*noise, in [0, 1) "
                        "(default: the bundle's reference_strength; 0.5 without a bundle)")
    p.add_argument("--controlnet-scale", type=float, default=None,
                   help="controlnet: factor on the control encoder's residuals (default: the bundle's)")
    p.add_argument("--baseline", choices=("flow", "a2a"), default="flow",
                   help="without --lora-path: flow = image2image start at --ref-strength, a2a = the released "
                        "audio2audio task on the vocal")
    p.add_argument("--infer-step", "--infer-steps", dest="infer_step", type=int, default=60, help="denoising steps")
    add_guidance_arguments(p)
    p.add_argument("--output-type", choices=("accompaniment", "mix"), default=None,
                   help="accompaniment: <key>_accompaniment + <key>_mix; mix: <key>_mix only "
                        "(default: the bundle's output_type; accompaniment without a bundle)")
    p.add_argument("--mix-offset", type=float, default=-3.0, metavar="LU",
                   help="loudness of the accompaniment in the mix relative to the vocal")
    p.add_argument("--loudness", type=loudness_target, default=-14.0, metavar="LUFS",
                   help="normalise the vocal (and any --blend-reference) to this integrated loudness; none to skip")
    p.add_argument("--blend-reference", action="append", metavar="FILE",
                   help="reference accompaniment whose latents are blended into the result: once for every "
                        "vocal or once per --vocal, in order (default: no blending)")
    p.add_argument("--blend-ratio", type=float, default=0.3,
                   help="weight of the reference in the blend, in [0, 1]")
    p.add_argument("--blend-bands", default=None,
                   help="latent rows to blend: rows (0-2, 0,5-7; 16 rows, 0 lowest) or a frequency range "
                        "(40-250Hz, 2k-4kHz) (default: all rows)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the audio and JSON files")
    p.add_argument("--format", choices=FORMATS, default="wav", help="audio format of the outputs")
    p.add_argument("--seed", type=int, default=None, help="noise seed (default: a random one, recorded in the JSON)")
    p.add_argument("--dtype", choices=("auto", *DTYPES), default="auto",
                   help="model precision: auto = bf16 on CUDA, fp32 elsewhere")
    add_device_argument(p, "the models")
    add_num_threads_argument(p)
    add_verbose_argument(p)
    return p


def sample_key(path: Path) -> str:
    stem = path.stem
    return stem[: -len("_vocal")] if stem.endswith("_vocal") and len(stem) > len("_vocal") else stem


def check_args(args) -> tuple[list[tuple[str, Path]], list[int] | None]:
    """Validated (key, vocal path) pairs and blend rows."""
    from acestep.accompaniment.blend import parse_bands

    if args.format == "mp3":
        import soundfile as sf

        if "MP3" not in sf.available_formats():
            raise InputError(f"--format mp3: this libsndfile ({sf.__libsndfile_version__}) cannot write mp3 "
                             "(use wav or flac)")
    if args.infer_step < 1:
        raise InputError(f"--infer-step must be at least 1, got {args.infer_step}")
    if args.ref_strength is not None and not 0.0 <= args.ref_strength < 1.0:
        raise InputError(f"--ref-strength must lie in [0, 1), got {args.ref_strength}")
    if args.controlnet_scale is not None and args.controlnet_scale < 0:
        raise InputError(f"--controlnet-scale must not be negative, got {args.controlnet_scale}")
    if not 0.0 <= args.guidance_interval <= 1.0:
        raise InputError(f"--guidance-interval must lie in [0, 1], got {args.guidance_interval}")
    if not 0.0 <= args.blend_ratio <= 1.0:
        raise InputError(f"--blend-ratio must lie in [0, 1], got {args.blend_ratio}")
    rows = None
    if args.blend_bands is not None:
        try:
            rows = parse_bands(args.blend_bands)
        except ValueError as exc:
            raise InputError(f"--blend-bands: {exc}") from None
    refs = args.blend_reference or []
    if refs and len(refs) not in (1, len(args.vocal)):
        raise InputError(f"--blend-reference given {len(refs)} times for {len(args.vocal)} vocals "
                         "(give it once, or once per --vocal)")
    if args.blend_bands is not None and not refs:
        raise InputError("--blend-bands needs --blend-reference")
    if args.lora_path is not None:
        if not Path(args.lora_path).exists():
            raise InputError(f"{args.lora_path}: --lora-path not found")
        if not Path(args.lora_path).is_dir():
            raise InputError(f"{args.lora_path}: --lora-path must be a model bundle folder "
                             "(with accompaniment_config.json)")
    pairs, seen = [], {}
    for value in args.vocal:
        path = Path(value)
        if not path.is_file():
            raise InputError(f"{path}: vocal file not found")
        key = sample_key(path)
        if key in seen:
            raise InputError(f"{path}: sample key {key!r} is also the key of {seen[key]}")
        seen[key] = path
        pairs.append((key, path))
    for value in refs:
        if not Path(value).is_file():
            raise InputError(f"{value}: blend reference file not found")
    return pairs, rows


def read_stereo_48k(path: Path, what: str):
    """[N, 2] float32 numpy at 48 kHz."""
    import numpy as np

    from shirabe.audio.io import load_audio

    wav, _ = load_audio(path, sr=OUTPUT_SR, mono=False)
    if wav.ndim == 1:
        wav = np.stack([wav, wav], axis=1)
    if wav.shape[1] > 2:
        raise InputError(f"{path}: {what} has {wav.shape[1]} channels (use mono or stereo)")
    if wav.shape[0] == 0:
        raise InputError(f"{path}: {what} holds no samples")
    return np.ascontiguousarray(wav, dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    pairs, rows = check_args(args)
    from acestep.bin.generate import DTYPES, package_version, read_lyrics, write_json

    lyrics, lyrics_source = read_lyrics(args)

    import torch

    from acestep.accompaniment.bundle import load_bundle
    from acestep.accompaniment.inference import (
        BlendSettings,
        apply_bundle,
        generate_accompaniment,
        resolve_mode,
    )
    from acestep.accompaniment.loudness import (
        mix_matched,
        normalize_loudness,
        peak_limit,
        remove_dc,
    )
    from acestep.pipeline import ACEStepPipeline
    from acestep.sampling.options import guidance_from_args, guidance_record
    from shirabe.audio.io import save_audio
    from shirabe.cli import resolve_device

    bundle = load_bundle(args.lora_path) if args.lora_path is not None else None
    mode, strength, scale = resolve_mode(bundle, args.baseline, args.ref_strength, args.controlnet_scale)
    generated_type = bundle.output_type if bundle is not None else "accompaniment"
    output_type = args.output_type or generated_type
    if generated_type == "mix" and output_type == "accompaniment":
        raise InputError(f"{args.lora_path}: the bundle generates full mixes (accompaniment_config.json: "
                         "accompaniment.output_type = mix); use --output-type mix")
    guidance = guidance_from_args(args)

    torch.set_num_threads(args.num_threads)
    device = resolve_device(args.device)
    dtype_name = args.dtype if args.dtype != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    dtype = getattr(torch, DTYPES[dtype_name])
    seed = args.seed if args.seed is not None else random.randrange(2 ** 31)
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    vocals = {key: read_stereo_48k(path, "vocal") for key, path in pairs}  # fail on bad input before loading
    refs = [read_stereo_48k(Path(p), "blend reference") for p in (args.blend_reference or [])]

    t0 = time.perf_counter()
    pipe = ACEStepPipeline.from_checkpoint_dir(args.checkpoint_dir, device, dtype)
    merged = apply_bundle(pipe, bundle, args.lora_weight)
    if merged:
        logger.info("merged the bundle's LoRA into %d layers (weight %s)", len(merged), args.lora_weight)
    load_seconds = time.perf_counter() - t0

    def normalised(wav):
        return (wav, 1.0) if args.loudness is None else normalize_loudness(wav, OUTPUT_SR, args.loudness)

    for index, (key, path) in enumerate(pairs):
        vocal, vocal_gain = normalised(vocals[key])
        blend, ref_path = None, None
        if refs:
            which = index if len(refs) > 1 else 0
            ref_path = args.blend_reference[which]
            ref, _ = normalised(refs[which])
            ref_latents, _ = pipe.dcae.encode(torch.from_numpy(ref.T.copy())[None].to(device), sr=OUTPUT_SR)
            blend = BlendSettings(ref_latents.float(), args.blend_ratio, rows)
        result = generate_accompaniment(
            pipe, torch.from_numpy(vocal.T.copy()), bundle, args.prompt, lyrics, infer_steps=args.infer_step,
            guidance=guidance, ref_strength=args.ref_strength, controlnet_scale=args.controlnet_scale, seed=seed,
            baseline=args.baseline, blend=blend, lyrics_language=args.lyrics_language, romanizer=args.romanizer,
            lyrics_source=lyrics_source, progress=True)
        audio = remove_dc(result.audio.numpy().T)  # [N, 2], without the decoder's constant offset
        written, acc_gain, mix_gain, out_gain = {}, None, None, None
        if generated_type == "accompaniment":
            if output_type == "accompaniment":
                track, out_gain = peak_limit(audio, 1.0)
                written["accompaniment"] = save_audio(out_dir / f"{key}_accompaniment.{args.format}", track, OUTPUT_SR)
            mix, acc_gain, mix_gain = mix_matched(vocal, audio, OUTPUT_SR, args.mix_offset)
            written["mix"] = save_audio(out_dir / f"{key}_mix.{args.format}", mix, OUTPUT_SR)
        else:
            track, out_gain = peak_limit(audio, 1.0)
            written["mix"] = save_audio(out_dir / f"{key}_mix.{args.format}", track, OUTPUT_SR)
        params = {
            "key": key, "vocal_path": str(path), "audio_paths": {k: str(v) for k, v in written.items()},
            "format": args.format, "output_type": output_type, "generated_type": generated_type, "mode": mode,
            "bundle": args.lora_path, "lora_weight": args.lora_weight, "baseline": args.baseline,
            "ref_strength": strength, "controlnet_scale": scale, "prompt": args.prompt, "lyrics": lyrics,
            "lyrics_file": args.lyrics_file, "lyrics_language": args.lyrics_language, "romanizer": args.romanizer,
            "infer_step": args.infer_step, "num_denoising_steps": result.num_steps, "scheduler_type": "euler",
            **guidance_record(args), "actual_seeds": [seed], "loudness_target": args.loudness,
            "vocal_gain": vocal_gain, "mix_offset": args.mix_offset, "mix_accompaniment_gain": acc_gain,
            "mix_gain": mix_gain, "output_gain": out_gain, "blend_reference": ref_path,
            "blend_ratio": args.blend_ratio if refs else None, "blend_rows": rows if refs else None,
            "sample_rate": OUTPUT_SR, "samples": int(audio.shape[0]), "output_duration": audio.shape[0] / OUTPUT_SR,
            "latent_frames": int(result.latents.shape[-1]), "checkpoint_dir": str(args.checkpoint_dir),
            "device": str(device), "dtype": dtype_name, "num_threads": args.num_threads,
            "timecosts": {"load": load_seconds, **result.timings}, "version": package_version(),
            "command": [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])],
            "arguments": vars(args),
        }
        write_json(out_dir / f"{key}_input_params.json", params)
        logger.info("%s: wrote %s (%.2f s at %d Hz)", key, ", ".join(str(v) for v in written.values()),
                    audio.shape[0] / OUTPUT_SR, OUTPUT_SR)
    return 0


if __name__ == "__main__":
    run_main(main)
