"""Command-line pieces shared by the ZipVoice inference binaries (PyTorch and ONNX); torch-free."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from shirabe.audio.io import AUDIO_FORMATS
from shirabe.cli import InputError, add_bool_argument


def output_path(path: str | Path, fmt: str | None) -> Path:
    """``path`` with the extension of ``fmt``; without ``fmt`` its own (wav when it has none)."""
    path = Path(path)
    if fmt is None:
        ext = path.suffix.lower().lstrip(".")
        if not ext:
            return path.with_suffix(".wav")
        if ext not in AUDIO_FORMATS:
            raise InputError(f"{path}: unsupported audio format '.{ext}' (use one of: {', '.join(AUDIO_FORMATS)})")
        return path
    return path.with_suffix("." + fmt)


def read_test_list(path: str | Path) -> list[tuple[str, str, str, str]]:
    """``(id, prompt_text, prompt_wav, text)`` rows of a test-list TSV (prompt paths may be relative to it)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such test list")
    items, seen = [], set()
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 4:
                raise InputError(f"{path}:{lineno}: expected 4 tab-separated fields "
                                 f"(id, prompt_text, prompt_wav, text), got {len(row)}")
            utt_id, prompt_text, prompt_wav, text = (c.strip() for c in row)
            if not utt_id or "/" in utt_id:
                raise InputError(f"{path}:{lineno}: bad id {utt_id!r}")
            if utt_id in seen:
                raise InputError(f"{path}:{lineno}: id {utt_id!r} used twice")
            seen.add(utt_id)
            wav = Path(prompt_wav)
            if not wav.is_absolute() and not wav.exists() and (path.parent / wav).exists():
                wav = path.parent / wav
            if not wav.is_file():
                raise InputError(f"{path}:{lineno}: no such prompt audio file {prompt_wav!r}")
            if not text or not prompt_text:
                raise InputError(f"{path}:{lineno}: empty {'text' if not text else 'prompt text'}")
            items.append((utt_id, prompt_text, str(wav), text))
    if not items:
        raise InputError(f"{path}: test list is empty")
    return items


def load_noise(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such noise file")
    try:
        noise = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{p}: not a readable .npy array ({e})") from e
    if not np.issubdtype(noise.dtype, np.floating):
        raise InputError(f"{p}: noise must be a float array, got {noise.dtype}")
    return noise


def save_features(path: str | Path, feats: np.ndarray) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, feats.astype(np.float32))


def check_sentence_args(args) -> None:
    """Checks shared by the inference binaries: single-sentence vs test-list mode and value ranges."""
    single = (args.prompt_wav, args.prompt_text, args.text)
    if args.test_list is not None:
        if any(v is not None for v in single):
            raise InputError("give either --test-list or --prompt-wav/--prompt-text/--text, not both")
        if args.noise_file is not None:
            raise InputError("--noise-file works in single-sentence mode only")
    else:
        for flag, value in zip(("--prompt-wav", "--prompt-text", "--text"), single):
            if value is None:
                raise InputError(f"{flag} is required (or use --test-list)")
        if not args.text.strip():
            raise InputError("--text is empty")
        if not args.prompt_text.strip():
            raise InputError("--prompt-text is empty")
        output_path(args.res_wav_path, args.output_format)  # a bad extension fails before any work
    for flag, value in (("--num-step", args.num_step), ("--num-threads", args.num_threads)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    for flag, value in (("--speed", args.speed), ("--t-shift", args.t_shift), ("--feat-scale", args.feat_scale),
                        ("--target-rms", args.target_rms)):
        if not value > 0:
            raise InputError(f"{flag} must be > 0, got {value}")


def add_synthesis_arguments(p) -> None:
    """Text frontend, inputs, outputs and sampling options shared by the PyTorch and ONNX CLIs."""
    p.add_argument("--tokenizer", choices=("emilia", "espeak", "simple", "japanese"), default="emilia",
                   help="text frontend matching the token table")
    p.add_argument("--lang", default="en-us", help="espeak voice of the espeak tokenizer")
    p.add_argument("--scheme", default="prosody",
                   help="token scheme of the japanese tokenizer (prosody, hl, phone, kana); must match the token table")
    p.add_argument("--test-list", default=None,
                   help="TSV of {id}\\t{prompt_text}\\t{prompt_wav}\\t{text}; results go to --res-dir "
                        "(default: single-sentence mode)")
    p.add_argument("--prompt-wav", default=None,
                   help="prompt audio (required without --test-list; default: none)")
    p.add_argument("--prompt-text", default=None,
                   help="transcript of the prompt audio (required without --test-list; default: none)")
    p.add_argument("--text", default=None, help="text to synthesise (required without --test-list; default: none)")
    p.add_argument("--res-dir", default="results", help="output directory in --test-list mode")
    p.add_argument("--res-wav-path", default="result.wav",
                   help="output file in single-sentence mode (its extension follows --output-format)")
    p.add_argument("--output-format", choices=tuple(AUDIO_FORMATS), default=None,
                   help="audio format of the results; default: the extension of --res-wav-path, "
                        "else wav")
    p.add_argument("--save-features", default=None,
                   help="save the generated log-mel frames (T, 100) before the vocoder as .npy; "
                        "a directory in --test-list mode ({id}.npy) (default: not saved)")
    p.add_argument("--noise-file", default=None,
                   help="initial noise (.npy, (T_total, 100): prompt + generated frames of each chunk "
                        "in text order) instead of drawing it from --seed; single-sentence mode only "
                        "(default: drawn from --seed)")
    p.add_argument("--guidance-scale", type=float, default=None,
                   help="classifier-free guidance scale (default: 1.0 for zipvoice, 3.0 for zipvoice_distill)")
    p.add_argument("--num-step", type=int, default=None,
                   help="Euler steps (default: 16 for zipvoice, 8 for zipvoice_distill)")
    p.add_argument("--feat-scale", type=float, default=0.1, help="model-space scale of the log-mel features")
    p.add_argument("--speed", type=float, default=1.0, help="speaking-rate factor (>1 is faster)")
    p.add_argument("--t-shift", type=float, default=0.5, help="time-grid shift of the sampler (<1: more steps near t=0)")
    p.add_argument("--target-rms", type=float, default=0.1, help="prompts quieter than this RMS are raised to it")
    add_bool_argument(p, "--raw-evaluation", False,
                      "benchmark mode: no silence removal, punctuation or chunking")
    add_bool_argument(p, "--remove-long-sil", False,
                      "also shorten long silences inside the output; edges are always trimmed")


def synthesize_items(items, args, synthesize, logger) -> None:
    """Run ``synthesize(prompt_wav, prompt_text, text)`` for each test-list item (or the single
    sentence, ``utt_id`` None), write the audio (and features with --save-features) where the
    CLI's options say, and log per-item and overall real-time factors."""
    import time

    from shirabe.audio.io import save_audio

    total_audio = total_time = total_model = 0.0
    for utt_id, prompt_text, prompt_wav, text in items:
        started = time.perf_counter()
        result = synthesize(prompt_wav, prompt_text, text)
        if utt_id is None:
            out = output_path(args.res_wav_path, args.output_format)
            feat_out = args.save_features
        else:
            out = Path(args.res_dir) / f"{utt_id}.{args.output_format or 'wav'}"
            feat_out = None if args.save_features is None else Path(args.save_features) / f"{utt_id}.npy"
        save_audio(out, result.wav, 24000)
        if feat_out is not None:
            save_features(feat_out, result.features)
        elapsed = time.perf_counter() - started
        audio_s = result.timings["audio_seconds"]
        total_audio += audio_s
        total_time += elapsed
        total_model += result.timings["model_seconds"]
        logger.info("wrote %s (%.2f s of audio, %d chunk(s), RTF %.3f)", out, audio_s, result.num_chunks,
                    elapsed / max(audio_s, 1e-9))
    if total_audio > 0:
        logger.info("RTF %.4f, RTF without vocoder %.4f (%.2f s of audio in %.2f s)",
                    total_time / total_audio, total_model / total_audio, total_audio, total_time)
