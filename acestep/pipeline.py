"""ACE-Step v1 generation from a checkpoint folder in the released layout.

:class:`ACEStepPipeline` holds the transformer (``ace_step_transformer/``), the Music-DCAE and its
vocoder (``music_dcae_f8c8/``, ``music_vocoder/``), the UMT5 prompt encoder (``umt5-base/``) and the
lyric tokenizer. :meth:`ACEStepPipeline.generate` turns a :class:`GenerationRequest` into latents
and 48 kHz stereo audio:

1. prompt → UMT5 states (and, with ERG for tags, the same prompt with the query temperature as
   the null text); lyrics → ids (no lyrics: ids [0] with mask 0); speaker embedding zeros;
2. the task's start point (:mod:`acestep.sampling.tasks`), noise from ``seed`` / ``retake_seed``
   drawn on the CPU;
3. :func:`acestep.sampling.loop.denoise`;
4. DCAE decode at 48 kHz, cut to the target duration (text2music and retake: ``duration``;
   audio2audio and repaint: the reference's / source's length; extend: the source's length plus
   the extension) when the decoded audio is longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from acestep.sampling import tasks
from acestep.sampling.loop import Conditions, GuidanceSettings, denoise
from shirabe.cli import InputError, get_logger

logger = get_logger(__name__)

OUTPUT_SR = 48000
TASKS = ("text2music", "audio2audio", "retake", "repaint", "extend")
SUBFOLDERS = ("ace_step_transformer", "music_dcae_f8c8", "music_vocoder", "umt5-base")


@dataclass
class GenerationRequest:
    prompt: str
    lyrics: str = ""
    duration: float = 60.0
    task: str = "text2music"
    seed: int = 0
    retake_seed: int = 1
    infer_step: int = 60
    guidance: GuidanceSettings = field(default_factory=GuidanceSettings)
    ref_audio: str | Path | None = None
    ref_audio_strength: float = 0.5
    src_audio: str | Path | None = None
    repaint_start: float = 0.0
    repaint_end: float = 0.0
    extend_left: float = 0.0
    extend_right: float = 0.0
    retake_variance: float = 0.5
    lyrics_language: str = "auto"
    romanizer: str | None = None
    lyrics_source: str = "<lyrics>"
    max_frames: int = tasks.MAX_FRAMES


@dataclass
class GenerationResult:
    latents: torch.Tensor        # [B, 8, 16, T] float32
    audio: list[torch.Tensor]    # [2, N] float32 at ``sample_rate``
    sample_rate: int
    duration: float              # seconds of the target (before any cut to the decoded length)
    num_steps: int
    first_step: int
    timings: dict[str, float]


def _check_folder(root: Path) -> None:
    if not root.is_dir():
        raise InputError(f"{root}: checkpoint folder not found")
    for name in SUBFOLDERS:
        if not (root / name).is_dir():
            raise InputError(f"{root / name}: folder not found (a checkpoint folder holds {', '.join(SUBFOLDERS)})")


def make_lyric_tokenizer(romanizer: str | None = None):
    """The shipped lyric vocabulary with ``romanizer`` for Japanese lines (None: the module's default)."""
    from acestep.text.lyrics import LyricTokenizer

    return LyricTokenizer.from_file(romanizer=romanizer) if romanizer is not None else LyricTokenizer.from_file()


def encode_lyric_ids(tokenizer, lyrics: str, language: str = "auto", source: str = "<lyrics>") -> list[int]:
    """Ids of ``lyrics`` (``[0]`` for none)."""
    if not lyrics.strip():
        return [0]
    return list(tokenizer.encode(lyrics, language=language, source=source))


TRAINED_LORA_CONFIG = "lora_config.json"


class ACEStepPipeline:
    def __init__(self, transformer, dcae, text_encoder, lyric_tokenizer=None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.transformer = transformer
        self.dcae = dcae
        self.text_encoder = text_encoder
        self._lyric_tokenizer = lyric_tokenizer
        self._tokenizers: dict = {}
        self.device = torch.device(device)
        self.dtype = dtype

    @classmethod
    def from_checkpoint_dir(cls, root: str | Path, device: torch.device | str = "cpu",
                            dtype: torch.dtype = torch.float32, lora_path: str | Path | None = None,
                            lora_weight: float = 1.0, lyric_tokenizer=None) -> ACEStepPipeline:
        from acestep.dcae.pipeline import MusicDCAE
        from acestep.models import load_transformer
        from acestep.text.encoder import TextEncoder

        root = Path(root)
        _check_folder(root)
        transformer = load_transformer(root / "ace_step_transformer", device, dtype)
        if lora_path is not None:
            from acestep.models.lora import load_lora, trained_settings_beside

            settings = trained_settings_beside(lora_path)
            merged = load_lora(transformer, lora_path, lora_weight, settings)
            if settings is None:
                logger.info("merged a LoRA into %d layers (weight %s): %s", len(merged), lora_weight, lora_path)
            else:
                logger.info("merged a LoRA into %d layers (weight %s x trained scaling %.4g from its %s): %s",
                            len(merged), lora_weight, settings.scaling, TRAINED_LORA_CONFIG, lora_path)
        dcae = MusicDCAE.from_checkpoint_dir(root, device)
        # UMT5 overflows in float16: it then runs in float32 and its states are cast
        text_encoder = TextEncoder.from_dir(root / "umt5-base", device,
                                            torch.float32 if dtype == torch.float16 else dtype)
        return cls(transformer, dcae, text_encoder, lyric_tokenizer, device, dtype)

    def lyric_tokenizer(self, romanizer: str | None = None):
        """The tokenizer given at construction, else the shipped one with ``romanizer`` (cached per romanizer)."""
        if self._lyric_tokenizer is not None:
            return self._lyric_tokenizer
        if romanizer not in self._tokenizers:
            self._tokenizers[romanizer] = make_lyric_tokenizer(romanizer)
        return self._tokenizers[romanizer]

    # ---- inputs -------------------------------------------------------------------------------

    def conditions(self, request: GenerationRequest) -> Conditions:
        g = request.guidance
        text, text_mask = self.text_encoder.encode([request.prompt])
        text_null = None
        if g.guided and g.use_erg_tag:
            with self.text_encoder.query_temperature(g.erg_tau, tuple(g.erg_text_blocks)):
                text_null, _ = self.text_encoder.encode([request.prompt])
            text_null = text_null.to(self.dtype)
        ids = encode_lyric_ids(self.lyric_tokenizer(request.romanizer), request.lyrics, request.lyrics_language,
                               request.lyrics_source)
        lyric_mask = [0] if ids == [0] else [1] * len(ids)
        return Conditions(
            text=text.to(self.dtype), text_mask=text_mask,
            lyric_ids=torch.tensor([ids], dtype=torch.long, device=self.device),
            lyric_mask=torch.tensor([lyric_mask], dtype=torch.long, device=self.device),
            text_null=text_null)

    def audio_latents(self, path: str | Path, what: str) -> tuple[torch.Tensor, float]:
        """DCAE latents [1, 8, 16, T] of an audio file and its duration in seconds."""
        from shirabe.audio.io import load_audio

        wav, sr = load_audio(path, sr=None, mono=False)
        audio = torch.from_numpy(np.atleast_2d(wav.T) if wav.ndim == 2 else wav[None]).float()
        if audio.shape[-1] == 0:
            raise InputError(f"{path}: {what} holds no samples")
        if audio.shape[0] > 2:
            raise InputError(f"{path}: {what} has {audio.shape[0]} channels (use mono or stereo)")
        seconds = audio.shape[-1] / sr
        latents, _ = self.dcae.encode(audio[None].to(self.device), sr=sr)
        return latents.float(), seconds

    # ---- generation ---------------------------------------------------------------------------

    def start_point(self, request: GenerationRequest) -> tuple[tasks.StartPoint, float]:
        """The task's start point and its target duration in seconds."""
        task, steps = request.task, request.infer_step
        if task not in TASKS:
            raise InputError(f"task {task!r} is not one of {', '.join(TASKS)}")
        if task in ("text2music", "retake"):
            frames = tasks.seconds_to_frames(request.duration)
            if frames < 1:
                raise InputError(f"duration {request.duration} s is shorter than one latent frame")
            noise = tasks.draw_noise(request.seed, frames)
            if task == "text2music":
                return tasks.text2music_start(noise, steps), request.duration
            other = tasks.draw_noise(request.retake_seed, frames)
            return tasks.retake_start(noise, other, request.retake_variance, steps), request.duration
        if task == "audio2audio":
            if request.ref_audio is None:
                raise InputError("task audio2audio needs a reference audio file (--ref-audio)")
            ref, seconds = self.audio_latents(request.ref_audio, "reference audio")
            noise = tasks.draw_noise(request.seed, ref.shape[-1])
            try:
                return tasks.audio2audio_task_start(ref, noise, request.ref_audio_strength, steps), seconds
            except ValueError as e:
                raise InputError(f"{request.ref_audio}: {e}") from None
        if request.src_audio is None:
            raise InputError(f"task {task} needs a source audio file (--src-audio)")
        src, seconds = self.audio_latents(request.src_audio, "source audio")
        frames = src.shape[-1]
        if task == "repaint":
            a, b = tasks.seconds_to_frames(request.repaint_start), tasks.seconds_to_frames(request.repaint_end)
            if not (0 <= request.repaint_start < request.repaint_end <= seconds) or not 0 <= a < b <= frames:
                raise InputError(f"{request.src_audio}: repaint range {request.repaint_start}–{request.repaint_end} s "
                                 f"is outside the source (0–{seconds:.2f} s) or empty")
            noise = tasks.draw_noise(request.seed, frames)
            other = tasks.draw_noise(request.retake_seed, frames)
            try:
                return tasks.repaint_start(src, noise, other, a, b, request.retake_variance, steps), seconds
            except ValueError as e:
                raise InputError(f"{request.src_audio}: {e}") from None
        left, right = tasks.seconds_to_frames(request.extend_left), tasks.seconds_to_frames(request.extend_right)
        if left < 0 or right < 0 or left + right == 0:
            raise InputError(f"{request.src_audio}: extend needs at least one latent frame "
                             f"(--extend-left / --extend-right ≥ {1 / tasks.FRAMES_PER_SECOND:.3f} s)")
        window = tasks.extend_window(frames, left, right, request.max_frames)
        noise = tasks.draw_noise(request.seed, window)
        other = tasks.draw_noise(request.retake_seed, window)
        try:
            start = tasks.extend_start(src, noise, other, left, right, request.retake_variance, steps,
                                       request.max_frames)
        except ValueError as e:
            raise InputError(f"{request.src_audio}: {e}") from None
        return start, seconds + request.extend_left + request.extend_right

    def generate(self, request: GenerationRequest, progress: bool = True) -> GenerationResult:
        timings = {}
        t0 = time.perf_counter()
        cond = self.conditions(request)
        start, seconds = self.start_point(request)
        timings["preprocess"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        latents = start.finish(denoise(self.transformer, start, cond, request.guidance, progress))
        timings["diffusion"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sr, wavs = self.dcae.decode(latents, sr=OUTPUT_SR)
        target = int(round(seconds * sr))
        wavs = [w[:, :target].float().cpu() for w in wavs]
        timings["latent2audio"] = time.perf_counter() - t0
        return GenerationResult(latents.cpu(), wavs, sr, seconds, start.num_steps, start.first_step, timings)
