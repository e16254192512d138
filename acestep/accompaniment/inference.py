"""Vocal → accompaniment generation with an ACE-Step pipeline and (optionally) a model bundle.

:func:`generate_accompaniment` takes a 48 kHz stereo vocal [2, N] and:

1. encodes it with the pipeline's DCAE (latents [1, 8, 16, T], T = ⌈N at 44.1 kHz / 4096⌉);
2. draws noise [1, 8, 16, T] from ``seed`` (CPU generator, as :func:`acestep.sampling.tasks.draw_noise`);
3. builds the start:

   - image2image (an image2image bundle, or no bundle): the flow source
     ``x_src = s·vocal + (1 − s)·noise`` (:func:`acestep.accompaniment.flow.source_latents`,
     ``s`` = ``ref_strength``, default the bundle's ``reference_strength``) at σ = 1 with the full
     inference schedule of ``infer_steps`` steps — exactly where training's flow starts;
   - controlnet: pure noise with the full schedule; at every step the bundle's control encoder
     turns the vocal latents and the step's timestep into per-block residuals (times
     ``controlnet_scale``, default the bundle's) that reach the transformer in the conditional and
     the unconditional pass;
   - baseline ``a2a`` (no bundle only): the released audio2audio start
     (:func:`acestep.sampling.tasks.audio2audio_task_start`) on the vocal latents;

4. runs :func:`acestep.sampling.loop.denoise` (guidance, APG, ERG as for text2music);
5. optionally blends the result with a reference's latents (:mod:`acestep.accompaniment.blend`);
6. decodes at 48 kHz and cuts to exactly N samples.

A bundle's LoRA is merged into the pipeline's transformer once, by :func:`apply_bundle`, before any
generation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from acestep.accompaniment.blend import blend_latents
from acestep.accompaniment.bundle import Bundle
from acestep.accompaniment.flow import source_latents
from acestep.sampling import tasks
from acestep.sampling.loop import GuidanceSettings, denoise
from acestep.schedule import inference_schedule
from shirabe.cli import InputError

OUTPUT_SR = 48000
BASELINES = ("flow", "a2a")
DEFAULT_STRENGTH = 0.5


@dataclass
class BlendSettings:
    reference: torch.Tensor      # reference accompaniment latents [1, 8, 16, T']
    ratio: float = 0.3
    rows: list[int] | None = None


@dataclass
class AccompanimentResult:
    audio: torch.Tensor          # [2, N] float32 at 48 kHz: the accompaniment (or the mix for a mix bundle)
    latents: torch.Tensor        # [1, 8, 16, T] float32 (after any blending)
    vocal_latents: torch.Tensor  # [1, 8, 16, T]
    mode: str                    # image2image, controlnet or a2a
    strength: float | None
    controlnet_scale: float | None
    num_steps: int
    timings: dict[str, float] = field(default_factory=dict)


def apply_bundle(pipeline, bundle: Bundle | None, lora_weight: float = 1.0) -> list[str]:
    """Merge the bundle's LoRA into ``pipeline.transformer`` (once) and move its control encoder to the
    pipeline's device and dtype; returns the adapted module names."""
    if bundle is None:
        return []
    if getattr(pipeline, "accompaniment_bundle", None) is not None:
        raise ValueError("a model bundle was already applied to this pipeline")
    bundle.check_model(pipeline.transformer)
    merged = bundle.merge_lora(pipeline.transformer, lora_weight)
    if bundle.control_encoder is not None:
        bundle.control_encoder.to(device=pipeline.device, dtype=pipeline.dtype).eval()
    pipeline.accompaniment_bundle = bundle
    return merged


def vocal_latents(pipeline, vocal: torch.Tensor) -> torch.Tensor:
    """DCAE latents [1, 8, 16, T] of a 48 kHz vocal [C, N]."""
    latents, _ = pipeline.dcae.encode(vocal[None].to(pipeline.device, torch.float32), sr=OUTPUT_SR)
    return latents.float()


def resolve_mode(bundle: Bundle | None, baseline: str = "flow", ref_strength: float | None = None,
                 controlnet_scale: float | None = None) -> tuple[str, float | None, float | None]:
    """(mode, strength, scale) with the bundle's defaults; one-line errors for options the mode lacks."""
    if baseline not in BASELINES:
        raise InputError(f"baseline must be one of {', '.join(BASELINES)}, got {baseline!r}")
    where = f"{bundle.folder}: " if bundle is not None else ""
    mode = bundle.mode if bundle is not None else ("a2a" if baseline == "a2a" else "image2image")
    if bundle is not None and baseline != "flow":
        raise InputError(f"{where}--baseline {baseline} runs the base model only; leave out --lora-path")
    if mode == "controlnet":
        if ref_strength is not None:
            raise InputError(f"{where}--ref-strength applies to image2image; this bundle is a controlnet bundle")
        scale = bundle.config.accompaniment.controlnet_scale if controlnet_scale is None else controlnet_scale
        if scale < 0:
            raise InputError(f"--controlnet-scale must not be negative, got {scale}")
        return mode, None, float(scale)
    if controlnet_scale is not None:
        raise InputError(f"{where}--controlnet-scale needs a controlnet bundle (this run is {mode})")
    default = bundle.config.accompaniment.reference_strength if bundle is not None else DEFAULT_STRENGTH
    strength = default if ref_strength is None else ref_strength
    if not 0.0 <= strength < 1.0:
        raise InputError(f"--ref-strength must lie in [0, 1), got {strength}")
    return mode, float(strength), None


@torch.no_grad()
def generate_accompaniment(pipeline, vocal_wav48: torch.Tensor, bundle: Bundle | None, prompt: str,
                           lyrics: str = "", *, infer_steps: int = 60, guidance: GuidanceSettings | None = None,
                           ref_strength: float | None = None, controlnet_scale: float | None = None,
                           seed: int = 0, baseline: str = "flow", blend: BlendSettings | None = None,
                           lyrics_language: str = "auto", romanizer: str | None = None,
                           lyrics_source: str = "<lyrics>", progress: bool = False) -> AccompanimentResult:
    """See the module docstring; ``bundle`` must have been applied with :func:`apply_bundle`."""
    from acestep.pipeline import GenerationRequest

    if vocal_wav48.dim() != 2 or vocal_wav48.shape[0] not in (1, 2) or vocal_wav48.shape[-1] == 0:
        raise InputError(f"the vocal must be [1 or 2, N > 0] samples, got {list(vocal_wav48.shape)}")
    if infer_steps < 1:
        raise InputError(f"--infer-step must be at least 1, got {infer_steps}")
    if bundle is not None and getattr(pipeline, "accompaniment_bundle", None) is not bundle:
        raise ValueError("apply_bundle(pipeline, bundle) must run before generate_accompaniment")
    mode, strength, scale = resolve_mode(bundle, baseline, ref_strength, controlnet_scale)
    guidance = guidance if guidance is not None else GuidanceSettings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    request = GenerationRequest(prompt=prompt, lyrics=lyrics, guidance=guidance, lyrics_language=lyrics_language,
                                romanizer=romanizer, lyrics_source=lyrics_source)
    cond = pipeline.conditions(request)
    vocal = vocal_latents(pipeline, vocal_wav48)
    noise = tasks.draw_noise(seed, vocal.shape[-1]).to(vocal.device)
    residuals = None
    if mode == "image2image":
        timesteps, sigmas = inference_schedule(infer_steps)
        start = tasks.StartPoint(source_latents(vocal, noise, strength), timesteps, sigmas)
    elif mode == "a2a":
        try:
            start = tasks.audio2audio_task_start(vocal, noise, strength, infer_steps)
        except ValueError as exc:
            raise InputError(f"--baseline a2a: {exc}") from None
    else:
        start = tasks.text2music_start(noise, infer_steps)
        encoder = bundle.control_encoder
        control_input = vocal.to(pipeline.dtype)

        def residuals(x, timestep):
            return encoder(control_input, timestep.to(pipeline.dtype), None, scale)
    timings["preprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    latents = denoise(pipeline.transformer, start, cond, guidance, progress, residuals=residuals).float()
    timings["diffusion"] = time.perf_counter() - t0
    if blend is not None:
        latents = blend_latents(latents, blend.reference, blend.ratio, blend.rows)
    t0 = time.perf_counter()
    sr, wavs = pipeline.dcae.decode(latents, sr=OUTPUT_SR)
    audio = wavs[0].float().cpu()
    length = vocal_wav48.shape[-1]
    audio = audio[:, :length] if audio.shape[-1] >= length else torch.nn.functional.pad(
        audio, (0, length - audio.shape[-1]))
    timings["latent2audio"] = time.perf_counter() - t0
    return AccompanimentResult(audio, latents.cpu(), vocal.cpu(), mode, strength, scale,
                               start.num_steps - start.first_step, timings)
