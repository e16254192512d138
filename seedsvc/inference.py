"""Singing voice conversion with a trained SeedSVC model (library side of ``seedsvc.bin.convert``).

For a source and a reference recording:

1. both are loaded at 22.05 kHz; the reference is trimmed to the model's
   ``inference.max_prompt_frames`` (a logged, documented trim: upstream keeps 25 s);
2. mel, content and F0 are computed for both and the style vector from the
   reference; the source F0 is shifted by ``semitone_shift`` (voiced frames only),
   optionally after moving its median to the reference's (``auto_f0_adjust``);
3. the source is converted in chunks of ``max_context_frames - prompt`` frames,
   each after the reference prompt (prompt frames use the reference's own F0),
   consecutive chunks overlapping by ``crossfade_frames``; each chunk is vocoded
   and the pieces are joined with a cross-fade.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from seedsvc.audio import FRAME_RATE, HOP, SAMPLE_RATE, load_mel_vocoder, mel_spectrogram
from seedsvc.content import PhoneContentExtractor, fit_frames, load_content_extractor
from seedsvc.features import f0_at_mel_frames
from seedsvc.models import build_cfm, build_length_regulator, read_config, read_net
from seedsvc.models.loading import load_part
from seedsvc.style import StyleEncoder
from shirabe.audio import load_audio, resample
from shirabe.audio.crossfade import cross_fade_concat
from shirabe.cli import InputError
from shirabe.pitch import auto_f0_adjust, extract_f0, shift_semitones

logger = logging.getLogger(__name__)

MIN_SR, MAX_SR = 8000, 192000
SILENCE_PEAK = 1e-4
INFERENCE_DEFAULTS = {"max_context_frames": 2580, "max_prompt_frames": 2150, "crossfade_frames": 16,
                      "diffusion_steps": 30, "cfg_rate": [0.7, 0.7]}


def read_input_audio(path: str | Path, role: str) -> np.ndarray:
    """Mono 22.05 kHz audio of ``path``; one-line errors for missing, odd-rate or silent files."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {role} file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise InputError(f"{path}: cannot read the {role} audio ({e})") from e
    if not MIN_SR <= info.samplerate <= MAX_SR:
        raise InputError(f"{path}: unsupported sample rate {info.samplerate} Hz (supported: {MIN_SR}-{MAX_SR} Hz)")
    wav, sr = load_audio(path)
    if wav.size < sr * 0.1:
        raise InputError(f"{path}: the {role} is too short ({wav.size / sr:.3f} s; at least 0.1 s)")
    if float(np.abs(wav).max()) < SILENCE_PEAK:
        raise InputError(f"{path}: the {role} is silent")
    return resample(wav, sr, SAMPLE_RATE)


@dataclass
class ConvertOptions:
    semitone_shift: float = 0.0
    auto_f0_adjust: bool = False
    diffusion_steps: int | None = None
    cfg_rate: tuple[float, float] | None = None
    f0_method: str = "harvest"
    rmvpe_model: str | None = None
    use_f0: bool = True
    seed: int = 0


class Converter:
    def __init__(self, model_dir: str | Path, checkpoint: str | Path | None = None, content_extractor: str = "phone",
                 content_checkpoint=None, style_encoder: str = "campplus", style_checkpoint=None, vocoder_path=None,
                 device: str = "cpu", trust: bool = False, ssl_model=None):
        model_dir = Path(model_dir)
        cfg = read_config(model_dir / "config.yaml")
        ckpt = Path(checkpoint) if checkpoint else model_dir / "model.pth"
        net = read_net(ckpt, trust=trust)
        self.cfm = build_cfm(cfg)
        self.length_regulator = build_length_regulator(cfg)
        load_part(self.cfm, net.get("cfm", {}), "cfm", ckpt)
        load_part(self.length_regulator, net.get("length_regulator", {}), "length_regulator", ckpt)
        self.cfm.to(device).eval()
        self.length_regulator.to(device).eval()
        self.inference_cfg = {**INFERENCE_DEFAULTS, **(cfg.get("inference") or {})}
        limit = self.cfm.estimator.block_size - 2
        if self.inference_cfg["max_context_frames"] > limit:
            raise InputError(f"{model_dir}/config.yaml: max_context_frames exceeds the model's {limit} frames")
        self.content = load_content_extractor(content_extractor, content_checkpoint, device, ssl_model)
        self._check_content(model_dir, content_checkpoint)
        self.style = StyleEncoder(style_encoder, style_checkpoint, device)
        self.vocode, self.sample_rate = load_mel_vocoder(vocoder_path, trust=trust, device=device)
        self.device = device

    def _check_content(self, model_dir: Path, content_checkpoint) -> None:
        """The extractor's content must suit the length regulator (ids vs features, codebook, dim)."""
        lr, ext = self.length_regulator, self.content
        if lr.is_discrete != ext.discrete:
            takes = "token ids (is_discrete: true)" if lr.is_discrete else "float features (is_discrete: false)"
            gives = "token ids" if ext.discrete else "float features"
            raise InputError(f"{content_checkpoint}: the '{ext.name}' extractor gives {gives}, the model in "
                             f"{model_dir} takes {takes}")
        if ext.discrete and ext.codebook_size > lr.embedding.num_embeddings:
            raise InputError(f"{content_checkpoint}: gives ids of a {ext.codebook_size}-token codebook, the model "
                             f"embeds {lr.embedding.num_embeddings}")
        lr_in = getattr(lr, "content_in_proj", None)
        if not ext.discrete and lr_in is not None and lr_in.in_features != ext.dim:
            raise InputError(f"{content_checkpoint}: gives {ext.dim}-d content, the model takes "
                             f"{lr_in.in_features}-d")

    def _content(self, wav: np.ndarray, mel: torch.Tensor) -> torch.Tensor:
        """Content of 22.05 kHz ``wav`` at its ``mel`` frames: (T, D) features or (T,) int64 ids."""
        if isinstance(self.content, PhoneContentExtractor):  # from the mel already computed
            return fit_frames(self.content.from_mel(mel), mel.shape[1])
        return fit_frames(self.content.extract(wav, SAMPLE_RATE, num_frames=mel.shape[1]), mel.shape[1])

    def _f0(self, wav: np.ndarray, opts: ConvertOptions, f0_100: np.ndarray | None = None) -> np.ndarray:
        if f0_100 is None:
            f0_100 = extract_f0(wav, SAMPLE_RATE, method=opts.f0_method, rmvpe_model_path=opts.rmvpe_model)
        return np.asarray(f0_100, dtype=np.float64)

    @torch.inference_mode()
    def convert(self, source: np.ndarray, reference: np.ndarray, opts: ConvertOptions,
                source_f0: np.ndarray | None = None, reference_name: str = "reference") -> np.ndarray:
        icfg = self.inference_cfg
        steps = opts.diffusion_steps or int(icfg["diffusion_steps"])
        cfg_rate = tuple(opts.cfg_rate or icfg["cfg_rate"])
        max_prompt = int(icfg["max_prompt_frames"])
        if len(reference) // HOP > max_prompt:
            logger.warning("%s is %.1f s; using its first %.1f s (inference.max_prompt_frames = %d)",
                           reference_name, len(reference) / SAMPLE_RATE, max_prompt / FRAME_RATE, max_prompt)
            reference = reference[: max_prompt * HOP]
        torch.manual_seed(opts.seed)
        mel_ref = mel_spectrogram(torch.from_numpy(reference))[0]
        mel_src = mel_spectrogram(torch.from_numpy(source))[0]
        p, t_src = mel_ref.shape[1], mel_src.shape[1]
        c_ref = self._content(reference, mel_ref)
        c_src = self._content(source, mel_src)
        style = self.style(reference, SAMPLE_RATE).to(self.device)[None]
        use_f0 = opts.use_f0 and self.cfm.estimator.has_f0
        f0_ref = f0_src = None
        if use_f0:
            ref_100 = self._f0(reference, opts)
            src_100 = self._f0(source, opts, source_f0)
            if opts.auto_f0_adjust:
                src_100 = auto_f0_adjust(src_100, ref_100)
            src_100 = shift_semitones(src_100, opts.semitone_shift)
            f0_ref = torch.from_numpy(f0_at_mel_frames(ref_100, p))
            f0_src = torch.from_numpy(f0_at_mel_frames(src_100, t_src))
        chunk = int(icfg["max_context_frames"]) - p
        overlap = int(icfg["crossfade_frames"])
        if chunk <= 2 * overlap:
            raise InputError(f"{reference_name}: the prompt leaves only {chunk} frames per chunk; use a shorter reference")
        pieces, start = [], 0
        while True:
            end = min(start + chunk, t_src)
            mel = self._chunk(mel_ref, c_ref, c_src[start:end], style, steps, cfg_rate,
                              None if f0_ref is None else torch.cat([f0_ref, f0_src[start:end]]))
            pieces.append(self.vocode(mel)[0].numpy())
            if end >= t_src:
                break
            start = end - overlap
        wav = cross_fade_concat(pieces, self.sample_rate, overlap * HOP / SAMPLE_RATE)
        return wav[: t_src * HOP * self.sample_rate // SAMPLE_RATE]

    def _chunk(self, mel_ref, c_ref, c_src, style, steps, cfg_rate, f0) -> torch.Tensor:
        p = mel_ref.shape[1]
        total = p + c_src.shape[0]
        content = torch.cat([c_ref, c_src])[None].to(self.device)
        x_lens = torch.tensor([total], device=self.device)
        mu, _ = self.length_regulator(content, x_lens)
        out = self.cfm.inference(mu, x_lens, mel_ref[None].to(self.device), style, steps, 1.0, list(cfg_rate),
                                 f0=None if f0 is None else f0[None].to(self.device))
        return out[..., p:]
