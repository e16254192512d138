"""Generating songs with SongBloom from upstream's JSONL: requests, lyrics, prompts, seeds and outputs.

A request is one JSONL line ``{"idx": ..., "lyrics": ..., "prompt_wav": ...}`` (upstream's
fields). Each line is checked on its own (:func:`read_requests`, :func:`lyric_symbols`,
:func:`load_prompt`): a mistake is a one-line :class:`Failure` naming the line, and the other
lines still generate. :func:`generate_songs` writes ``{idx}_s{i}.{fmt}`` (48 kHz stereo from the
fp32 VAE, chunked decode), ``generated.jsonl`` (one record per sample) and ``failures.tsv``.

* **Lyrics** already in symbol form (every whitespace-separated item a symbol of the model's
  vocabulary) pass through; anything else is Japanese lyrics and goes through the G2P
  (:func:`songbloom.g2p.lyrics_to_phonemes`), where a symbol the vocabulary lacks is an error.
* **Prompt**: read, averaged to mono, resampled to the VAE's rate (48 kHz), its first
  ``train_dataset.prompt_len`` (10) seconds kept; shorter than :data:`MIN_PROMPT_SECONDS` or
  silent (peak below -80 dBFS) is an error. ``"prompt_wav": null`` asks for the null prompt.
* **Seeds**: sample ``i`` of every line draws everything (prompt posterior, sketch ids, patch
  noise) from a CPU ``torch.Generator`` seeded with ``seed + i``, so a seed reproduces a song.
* **Adapters**: :func:`apply_adapter` merges a LoRA adapter file written by the trainer.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from shirabe.audio import load_audio, save_audio
from shirabe.audio.io import AUDIO_FORMATS, is_silent
from shirabe.cli import InputError, get_logger
from shirabe.train.checkpoint import safe_load
from songbloom.g2p import LyricError, Vocab, lyrics_to_phonemes
from songbloom.models import MVSADiTAR, SongBloom, SongBloomConfig, load_config, load_model
from songbloom.models.config import BUDGET_FRAME_RATE

logger = get_logger(__name__)

FIELDS = ("idx", "lyrics", "prompt_wav")
MIN_PROMPT_SECONDS = 1.0
OUTPUT_FORMATS = tuple(AUDIO_FORMATS)
GENERATED = "generated.jsonl"
FAILURES = "failures.tsv"
_BAD_IDX = re.compile(r"[/\\\x00-\x1f\x7f]")


# -- requests ---------------------------------------------------------------------------------


@dataclass
class Request:
    """One JSONL line: ``idx``, the raw ``lyrics`` and the prompt path (``None``: the null prompt)."""

    line: int
    idx: str
    lyrics: str
    prompt: Path | None
    where: str


@dataclass
class Failure:
    """A line (or one sample of it) that produced nothing, and why (one line)."""

    line: int
    idx: str
    error: str


def _where(path: Path, line: int) -> str:
    return f"{path}:{line}"


def parse_request(text: str, line: int, jsonl: Path) -> Request:
    """One JSONL line -> :class:`Request`; a mistake is an :class:`InputError` naming the line."""
    where = _where(jsonl, line)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object with {', '.join(FIELDS)}")
    missing = [f for f in FIELDS if f not in obj]
    if missing:
        raise InputError(f"{where}: missing field {', '.join(repr(f) for f in missing)} "
                         f"(a line needs {', '.join(FIELDS)})")
    idx = obj["idx"]
    if isinstance(idx, bool) or not isinstance(idx, (str, int)):
        raise InputError(f"{where}: field 'idx' must be a string, got {type(idx).__name__}")
    idx = str(idx)
    if not idx.strip() or idx in (".", "..") or _BAD_IDX.search(idx) or len(idx) > 200:
        raise InputError(f"{where}: field 'idx' {idx!r} cannot name a file (no '/', '\\', control "
                         "characters; 1-200 characters)")
    lyrics = obj["lyrics"]
    if not isinstance(lyrics, str) or not lyrics.strip():
        raise InputError(f"{where}: field 'lyrics' must be a non-empty string")
    prompt = obj["prompt_wav"]
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{where}: field 'prompt_wav' must be a path (or null for no prompt)")
        prompt = Path(prompt)
        if not prompt.is_absolute():
            prompt = jsonl.parent / prompt
    return Request(line, idx, lyrics, prompt, where)


def read_requests(jsonl: str | Path) -> tuple[list[Request], list[Failure]]:
    """The lines of ``jsonl`` (blank lines skipped): the good requests and the failed lines.

    A repeated ``idx`` fails on its later line (its files would overwrite the earlier ones).
    A missing or unreadable file, or one without any line, is an :class:`InputError`.
    """
    jsonl = Path(jsonl)
    if not jsonl.is_file():
        raise InputError(f"{jsonl}: no such file")
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{jsonl}: cannot read ({e})") from None
    requests: list[Request] = []
    failures: list[Failure] = []
    seen: dict[str, int] = {}
    for line, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            request = parse_request(text, line, jsonl)
        except InputError as e:
            failures.append(Failure(line, _idx_guess(text), str(e)))
            continue
        if request.idx in seen:
            failures.append(Failure(line, request.idx, f"{request.where}: idx {request.idx!r} is already used on "
                                                       f"line {seen[request.idx]}"))
            continue
        seen[request.idx] = line
        requests.append(request)
    if not requests and not failures:
        raise InputError(f"{jsonl}: no songs (the file has no JSON lines)")
    return requests, failures


def _idx_guess(text: str) -> str:
    try:
        idx = json.loads(text).get("idx")
    except (json.JSONDecodeError, AttributeError):
        return "-"
    return str(idx) if isinstance(idx, (str, int)) and not isinstance(idx, bool) else "-"


# -- lyrics and prompts -------------------------------------------------------------------------


def is_symbol_form(lyrics: str, vocab: Vocab) -> bool:
    """True when every whitespace-separated item of ``lyrics`` is a symbol of ``vocab``."""
    items = lyrics.split()
    return bool(items) and all(item in vocab for item in items)


def lyric_symbols(lyrics: str, vocab: Vocab, *, allow_unknown: bool = False, user_dict: str | Path | None = None,
                  where: str = "lyrics") -> str:
    """The symbol string the model reads: ``lyrics`` itself (spaces normalised) when it is already in
    symbol form (:func:`is_symbol_form`), else the G2P's reading of Japanese lyrics.

    An unknown symbol, or lyrics that give no symbol, is a :class:`~songbloom.g2p.LyricError`
    naming ``where`` (unless ``allow_unknown``: then unknown symbols are dropped and logged).
    """
    if is_symbol_form(lyrics, vocab):
        return " ".join(lyrics.split())
    out = lyrics_to_phonemes(lyrics, allow_unknown=allow_unknown, vocab=vocab, user_dict=user_dict, where=where)
    if out.unknown:
        logger.warning("%s: dropped %d symbols the vocabulary lacks: %s", where, sum(out.unknown.values()),
                       ", ".join(f"{s!r} x{n}" for s, n in out.unknown.most_common(5)))
    if not out.text:
        raise LyricError(f"{where}: the lyrics give no symbol to sing")
    return out.text


def load_prompt(path: str | Path, sample_rate: int, seconds: float, where: str = "prompt") -> torch.Tensor:
    """A style prompt as (1, N) float32 at ``sample_rate``: mono (channel mean), resampled, its first
    ``seconds``. Missing, unreadable, shorter than :data:`MIN_PROMPT_SECONDS` or silent is an
    :class:`InputError` naming ``where`` and the file."""
    try:
        wav, sr = load_audio(path, sr=sample_rate, mono=True)
    except InputError as e:
        raise InputError(f"{where}: prompt_wav {e}") from None
    wav = wav[:int(round(sample_rate * seconds))]
    length = wav.shape[0] / sample_rate
    if length < MIN_PROMPT_SECONDS:
        raise InputError(f"{where}: prompt_wav {path} is {length:.2f} s long; a prompt needs at least "
                         f"{MIN_PROMPT_SECONDS:g} s")
    if is_silent(wav):
        raise InputError(f"{where}: prompt_wav {path} is silent (peak below -80 dBFS)")
    return torch.from_numpy(np.ascontiguousarray(wav))[None]


# -- sampling options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingOptions:
    """What :meth:`SongBloom.generate` samples with; ``max_frames`` counts 25 frames per second."""

    cfg_coef: float
    temp: float
    top_k: int
    top_p: float
    penalty_repeat: bool
    penalty_window: int
    steps: int
    diff_temp: float
    dit_cfg_type: str
    max_frames: float

    @classmethod
    def from_config(cls, config: SongBloomConfig, max_duration: float | None = None, **overrides) -> SamplingOptions:
        """The config's ``inference:`` values and ``max_dur`` (``max_duration`` seconds when given);
        ``overrides`` left ``None`` keep the config's value. Out-of-range values are an InputError."""
        inf = config.inference
        values = dict(cfg_coef=inf.cfg_coef, temp=inf.temp, top_k=inf.top_k, top_p=inf.top_p,
                      penalty_repeat=inf.penalty_repeat, penalty_window=inf.penalty_window, steps=inf.steps,
                      diff_temp=inf.diff_temp, dit_cfg_type=inf.dit_cfg_type)
        unknown = set(overrides) - set(values)
        if unknown:
            raise TypeError(f"unknown sampling options: {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        seconds = config.max_dur if max_duration is None else max_duration
        checks = [("--max-duration", seconds, seconds > 0, "> 0"), ("--steps", values["steps"], values["steps"] >= 1, ">= 1"),
                  ("--temp", values["temp"], values["temp"] >= 0, ">= 0"),
                  ("--top-k", values["top_k"], values["top_k"] >= 0, ">= 0"),
                  ("--top-p", values["top_p"], 0 <= values["top_p"] <= 1, "in [0, 1]"),
                  ("--penalty-window", values["penalty_window"], values["penalty_window"] >= 1, ">= 1"),
                  ("--diff-temp", values["diff_temp"], values["diff_temp"] > 0, "> 0")]
        for option, value, ok, rule in checks:
            if not ok:
                raise InputError(f"{option} must be {rule}, got {value}")
        if values["dit_cfg_type"] not in ("h", "global", "none"):
            raise InputError(f"--dit-cfg-type must be h, global or none, got {values['dit_cfg_type']!r}")
        return cls(max_frames=seconds * BUDGET_FRAME_RATE, **values)

    def generate_kwargs(self) -> dict:
        return asdict(self)


# -- the model ----------------------------------------------------------------------------------


def _adapter_config(obj, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if not isinstance(obj, dict) or not isinstance(obj.get("adapter"), dict) or not isinstance(obj.get("config"), dict):
        raise InputError(f"{path}: not an adapter file (expected {{'adapter': {{key: tensor}}, 'config': {{...}}}})")
    tensors, config = obj["adapter"], obj["config"]
    bad = [k for k, v in tensors.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad or not tensors:
        raise InputError(f"{path}: 'adapter' must map keys to tensors" + (f" (not {bad[0]!r})" if bad else " (empty)"))
    rank, alpha, dropout = config.get("rank"), config.get("alpha"), config.get("dropout", 0.0)
    targets = config.get("targets")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise InputError(f"{path}: config.rank must be an integer >= 1, got {rank!r}")
    for name, value in (("alpha", alpha), ("dropout", dropout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{path}: config.{name} must be a number, got {value!r}")
    if not isinstance(targets, (list, tuple)) or not targets or not all(isinstance(t, str) for t in targets):
        raise InputError(f"{path}: config.targets must be a non-empty list of module names, got {targets!r}")
    return tensors, dict(rank=rank, alpha=float(alpha), dropout=float(dropout), targets=list(targets),
                         use_dora=bool(config.get("use_dora", False)))


def apply_adapter(model: SongBloom, path: str | Path, trust: bool = False) -> SongBloom:
    """Merge the LoRA adapter file ``path`` into ``model.model`` (in place; returns ``model``).

    The file is ``{"adapter": {key: tensor}, "config": {"rank", "alpha", "dropout", "targets",
    ...}}`` (``torch.save``, read with ``weights_only=True``), keys relative to the MVSA-DiTAR as
    the trainer writes them: the LoRA matrices (``...q_proj.lora_A.default.weight``) and any other
    weight it trained (the lyric table). The adapters are added with
    :func:`shirabe.train.lora.wrap_lora`, the tensors loaded under peft's ``base_model.model.``
    prefix and folded in with :func:`shirabe.train.lora.merge_lora`. A key the wrapped model
    lacks, a mis-shaped tensor or an adapted layer without its matrices is an
    :class:`InputError` naming the file. Merge in fp32 and cast afterwards for the best precision.
    """
    from shirabe.train.lora import PEFT_PREFIX, merge_lora, resolve_targets, wrap_lora

    path = Path(path)
    tensors, cfg = _adapter_config(safe_load(path, trust=trust), path)
    resolve_targets(model.model, cfg["targets"], option=f"{path}: config.targets")
    was_training = model.model.training
    wrapped = wrap_lora(model.model, cfg["targets"], cfg["rank"], cfg["alpha"], cfg["dropout"],
                        use_dora=cfg["use_dora"])
    expected = wrapped.state_dict()
    state = {PEFT_PREFIX + k: v for k, v in tensors.items()}
    unknown = [k for k in tensors if PEFT_PREFIX + k not in expected]
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[PEFT_PREFIX + k].shape)})"
             for k, v in tensors.items() if PEFT_PREFIX + k in expected
             and tuple(v.shape) != tuple(expected[PEFT_PREFIX + k].shape)]
    missing = [k[len(PEFT_PREFIX):] for k in expected if ".lora_" in k and k not in state]
    problems = []
    if unknown:
        problems.append(f"keys the adapted model lacks: {', '.join(unknown[:3])}"
                        + (f" ({len(unknown)} in all)" if len(unknown) > 3 else ""))
    if wrong:
        problems.append(f"shape mismatch: {', '.join(wrong[:2])}")
    if missing:
        problems.append(f"no tensors for adapted layers: {', '.join(missing[:3])}"
                        + (f" ({len(missing)} in all)" if len(missing) > 3 else ""))
    if problems:
        raise InputError(f"{path}: does not fit this model; " + "; ".join(problems))
    wrapped.load_state_dict(state, strict=False)
    merged = merge_lora(wrapped)
    for p in merged.parameters():
        p.requires_grad_(False)
    model.model = merged.train(was_training)
    logger.info("%s: merged LoRA rank %d, alpha %g on %d target pattern(s) and %d tensors", path, cfg["rank"],
                cfg["alpha"], len(cfg["targets"]), len(tensors))
    return model


def load_for_generation(config_yaml: str | Path, checkpoint: str | Path | None = None, *,
                        adapter: str | Path | None = None, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, local_dir: str | Path | None = None,
                        trust: bool = False) -> SongBloom:
    """A :class:`SongBloom` ready to generate: the checkpoint (default the config's
    ``pretrained_path``), the adapter merged (in fp32, on the CPU) when given, the diffusion model
    cast to ``dtype`` and the VAE kept in fp32. A config without a VAE is an :class:`InputError`."""
    config = load_config(config_yaml, local_dir)
    if adapter is None:
        model = load_model(config, checkpoint, device=device, dtype=dtype, trust=trust)
    else:
        model = load_model(config, checkpoint, device="cpu", dtype=torch.float32, trust=trust)
        apply_adapter(model, adapter, trust=trust)
        model.model.to(device=device, dtype=dtype)
        if model.vae is not None:
            model.vae.to(device=device)
    if model.vae is None:
        raise InputError(f"{config.source}: names no VAE (vae.vae_cfg), which generation needs to encode "
                         "prompts and decode songs")
    return model.eval()


# -- generation ---------------------------------------------------------------------------------


@dataclass
class SongInput:
    """A request whose lyrics and prompt passed their checks."""

    request: Request
    symbols: str


@dataclass
class Outputs:
    """What a run wrote: one record per sample and the failures (their files are kept up to date)."""

    out_dir: Path
    records: list[dict] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def fail(self, failure: Failure) -> None:
        logger.error("%s", failure.error)
        self.failures.append(failure)
        self.write_failures()

    def add(self, record: dict) -> None:
        self.records.append(record)
        _write_text(self.out_dir / GENERATED,
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records))

    def write_failures(self) -> None:
        rows = sorted(self.failures, key=lambda f: f.line)
        _write_text(self.out_dir / FAILURES, "line\tidx\terror\n" + "".join(
            f"{f.line}\t{_tsv(f.idx)}\t{_tsv(f.error)}\n" for f in rows))


def _tsv(text: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", text)


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file renamed into place (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def check_requests(model: SongBloom, requests: list[Request], outputs: Outputs, *, allow_unknown: bool = False,
                   user_dict: str | Path | None = None) -> list[SongInput]:
    """Lyrics to symbols and prompts checked for every request before any generation; a line that
    fails is recorded in ``outputs`` and left out."""
    vocab = model.config.model.vocab
    max_len = model.config.model.lyric_max_len
    songs = []
    for r in requests:
        try:
            symbols = lyric_symbols(r.lyrics, vocab, allow_unknown=allow_unknown, user_dict=user_dict,
                                    where=r.where)
            if r.prompt is not None:
                load_prompt(r.prompt, model.sample_rate, model.config.prompt_len, r.where)
        except InputError as e:
            outputs.fail(Failure(r.line, r.idx, str(e)))
            continue
        count = len(symbols.split(" "))
        if count > max_len:
            logger.warning("%s: the lyrics have %d symbols; the model reads the first %d (the rest is not sung)",
                           r.where, count, max_len)
        songs.append(SongInput(r, symbols))
    return songs


def generate_sample(model: SongBloom, symbols: str, prompt: torch.Tensor | None, options: SamplingOptions,
                    seed: int, progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sketch ids (1, T) and latents (1, D, T) of one sample, every draw from a CPU generator seeded
    with ``seed`` (the prompt's posterior noise first)."""
    generator = torch.Generator().manual_seed(int(seed))
    return model.generate(symbols, prompt, sample_rate=model.sample_rate, generator=generator, progress=progress,
                          **options.generate_kwargs())


def render(model: SongBloom, latents: torch.Tensor) -> np.ndarray:
    """Latents (1, D, T) -> (samples, channels) float32 audio through the fp32 VAE (chunked)."""
    audio = model.decode(latents, chunked=True)[0]
    return audio.detach().to("cpu", torch.float32).T.contiguous().numpy()


def generate_songs(model: SongBloom, requests: list[Request], out_dir: str | Path, options: SamplingOptions, *,
                   n_samples: int = 2, seed: int = 0, output_format: str = "flac", allow_unknown: bool = False,
                   user_dict: str | Path | None = None, failures: list[Failure] | None = None,
                   progress: bool = True, save_sketch: bool = False) -> Outputs:
    """Generate ``n_samples`` songs per request into ``out_dir`` (see the module docstring).

    ``save_sketch``: also write the sampled sketch ids as ``{idx}_s{i}.sketch.npy`` (int64, one id
    per latent frame) and name them in the record (``sketch``), the input of
    ``songbloom.bin.recover_codebook``.

    ``failures`` are lines that already failed (unreadable JSONL lines). Every line is checked
    before the first song; a sample whose song ends before its first patch is a failure too.
    """
    from tqdm import tqdm

    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"--output-format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}")
    if n_samples < 1:
        raise InputError(f"--n-samples must be at least 1, got {n_samples}")
    outputs = Outputs(Path(out_dir))
    outputs.out_dir.mkdir(parents=True, exist_ok=True)
    for f in failures or []:
        outputs.fail(f)
    outputs.write_failures()
    _write_text(outputs.out_dir / GENERATED, "")
    songs = check_requests(model, requests, outputs, allow_unknown=allow_unknown, user_dict=user_dict)
    sr = model.sample_rate
    block = model.config.model.block_size
    budget = MVSADiTAR.max_patches(options.max_frames, block)
    total_audio = total_time = 0.0
    for song in songs:
        r = song.request
        try:
            prompt = None if r.prompt is None else load_prompt(r.prompt, sr, model.config.prompt_len, r.where)
        except InputError as e:  # changed since the check
            outputs.fail(Failure(r.line, r.idx, str(e)))
            continue
        for i in range(n_samples):
            started = time.perf_counter()
            with tqdm(total=budget, desc=f"{r.idx} s{i}", unit="patch", disable=not progress, leave=False) as bar:
                def update(done: int, _total: int, bar=bar) -> None:
                    bar.update(done - bar.n)

                tokens, latents = generate_sample(model, song.symbols, prompt, options, seed + i, update)
            frames = int(latents.shape[-1])
            if frames == 0:
                outputs.fail(Failure(r.line, r.idx, f"{r.where}: sample {i} (seed {seed + i}): the model ended the "
                                                    "song before its first patch; try another seed"))
                continue
            audio = render(model, latents)
            path = outputs.out_dir / f"{r.idx}_s{i}.{output_format}"
            save_audio(path, audio, sr)
            elapsed = time.perf_counter() - started
            seconds = audio.shape[0] / sr
            total_audio += seconds
            total_time += elapsed
            record = {"idx": r.idx, "sample": i, "path": path.name, "seconds": round(seconds, 4),
                      "frames": frames, "seed": seed + i, "line": r.line, "lyrics": song.symbols,
                      "prompt": None if r.prompt is None else str(r.prompt)}
            if save_sketch:
                sketch = outputs.out_dir / f"{r.idx}_s{i}.sketch.npy"
                np.save(sketch, tokens[0, :frames].detach().cpu().numpy().astype(np.int64))
                record["sketch"] = sketch.name
                record["id_rate"] = float(model.vae.frame_rate) if model.vae is not None else 25.0
            outputs.add(record)
            logger.info("%s: wrote %s (%d frames, %.2f s of audio in %.1f s, RTF %.3f)", r.where, path, frames,
                        seconds, elapsed, elapsed / max(seconds, 1e-9))
    if total_audio > 0:
        logger.info("%d samples, %.1f s of audio in %.1f s (RTF %.3f)", len(outputs.records), total_audio,
                    total_time, total_time / total_audio)
    return outputs


__all__ = [
    "FAILURES",
    "GENERATED",
    "MIN_PROMPT_SECONDS",
    "OUTPUT_FORMATS",
    "Failure",
    "Outputs",
    "Request",
    "SamplingOptions",
    "apply_adapter",
    "check_requests",
    "generate_sample",
    "generate_songs",
    "is_symbol_form",
    "load_for_generation",
    "load_prompt",
    "lyric_symbols",
    "read_requests",
    "render",
]
