"""A song as three 48 kHz stereo signals: the mix, the vocal and the accompaniment.

**Stems beside the song.** For a song file ``DIR/NAME.EXT`` the stems are ``DIR/NAME_vocal.*`` and
``DIR/NAME_inst.*`` (``.wav``, ``.flac`` or ``.mp3``); when ``NAME`` ends in ``_mix`` (the mini
corpus' ``{key}_mix.wav``) ``DIR/{key}_vocal.*`` and ``DIR/{key}_inst.*`` count too. Stems are used
as they are (the mix is still read from the song file); lengths differing by up to
:data:`MAX_LENGTH_SLACK` samples are cut to the shortest, a larger difference is an error.

**No stems.** The vocal is separated from the mix by a local demucs model
(``data.separator_checkpoint``: a model file as demucs writes it, loaded with
``demucs.states.load_model``; nothing is ever downloaded), and accompaniment = mix − vocal.
Without a checkpoint, or without the ``demucs`` package, the song is rejected with that reason.

**One resampling rule.** Every file is read at its own rate and converted to 48 kHz with soxr
(HQ, :func:`shirabe.audio.resample.resample`, through
:func:`songgeneration.tokenizer.read_stereo_48k`); mono is copied to both channels, more than two
channels is an error. The separator's own rate (44.1 kHz for demucs) is reached and left the same way.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from shirabe.audio.resample import resample
from shirabe.cli import InputError
from songgeneration.tokenizer import SAMPLE_RATE, read_stereo_48k

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3")
MAX_LENGTH_SLACK = SAMPLE_RATE // 2  # 0.5 s


def _first(folder: Path, name: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        if (folder / (name + suffix)).is_file():
            return folder / (name + suffix)
    return None


def find_stems(song: str | Path) -> tuple[Path, Path] | None:
    """``(vocal, accompaniment)`` files beside ``song``, or None (see the module doc)."""
    song = Path(song)
    keys = [song.stem] + ([song.stem[: -len("_mix")]] if song.stem.endswith("_mix") else [])
    for key in keys:
        vocal, inst = _first(song.parent, key + "_vocal"), _first(song.parent, key + "_inst")
        if vocal is not None and inst is not None:
            return vocal, inst
    return None


def demucs_available() -> bool:
    return importlib.util.find_spec("demucs") is not None


class Separator:
    """A local demucs model that takes the vocal out of a 48 kHz stereo mix."""

    def __init__(self, model, device: torch.device):
        self.model, self.device = model, device
        self.sample_rate = int(model.samplerate)
        if "vocals" not in model.sources:
            raise InputError(f"separator: the model's sources {model.sources} have no 'vocals'")
        self.vocal_index = list(model.sources).index("vocals")

    @classmethod
    def load(cls, checkpoint: str | Path, device: str | torch.device = "cpu") -> Separator:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise InputError(f"{checkpoint}: separator checkpoint not found (data.separator_checkpoint)")
        if not demucs_available():
            raise InputError("data.separator_checkpoint is set but the demucs package is not installed")
        from demucs.states import load_model

        try:
            model = load_model(str(checkpoint))
        except Exception as e:  # demucs raises many kinds for a wrong file
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise InputError(f"{checkpoint}: not a demucs model file ({reason})") from e
        device = torch.device(device)
        return cls(model.to(device).eval(), device)

    @torch.no_grad()
    def vocal(self, mix: torch.Tensor) -> torch.Tensor:
        from demucs.apply import apply_model

        x = resample(mix.t().numpy(), SAMPLE_RATE, self.sample_rate)  # [n, 2]
        wav = torch.from_numpy(np.ascontiguousarray(x.T)).unsqueeze(0).to(self.device)
        sources = apply_model(self.model, wav, device=self.device, split=True, overlap=0.25, progress=False)
        vocal = sources[0, self.vocal_index].float().cpu().numpy().T  # [n, 2]
        out = torch.from_numpy(np.ascontiguousarray(resample(vocal, self.sample_rate, SAMPLE_RATE).T))
        n = mix.shape[1]
        return out[:, :n] if out.shape[1] >= n else torch.nn.functional.pad(out, (0, n - out.shape[1]))


def _match_lengths(waves: list[torch.Tensor], names: list[Path]) -> list[torch.Tensor]:
    lengths = [w.shape[1] for w in waves]
    if max(lengths) - min(lengths) > MAX_LENGTH_SLACK:
        listed = ", ".join(f"{p.name} {n / SAMPLE_RATE:.2f} s" for p, n in zip(names, lengths))
        raise InputError(f"the song and its stems differ in length by more than "
                         f"{MAX_LENGTH_SLACK / SAMPLE_RATE:g} s ({listed})")
    n = min(lengths)
    return [w[:, :n].contiguous() for w in waves]


def load_song(song: str | Path, separator: Separator | None = None,
              separator_problem: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """``(mix, vocal, accompaniment, how)`` at 48 kHz stereo; ``how`` is ``"stems"`` or ``"separated"``.

    ``separator_problem`` is the reason a song without stems cannot be separated (used when
    ``separator`` is None). Every failure is an :class:`InputError` naming the file.
    """
    song = Path(song)
    mix = read_stereo_48k(song)
    stems = find_stems(song)
    if stems is not None:
        vocal, inst = read_stereo_48k(stems[0]), read_stereo_48k(stems[1])
        mix, vocal, inst = _match_lengths([mix, vocal, inst], [song, *stems])
        return mix, vocal, inst, "stems"
    if separator is None:
        raise InputError(f"{song}: no {song.stem}_vocal/_inst stems beside it and "
                         f"{separator_problem or 'no separator'}")
    vocal = separator.vocal(mix)
    return mix, vocal, mix - vocal, "separated"
