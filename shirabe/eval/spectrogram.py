"""Log-mel spectrograms of recordings side by side, as a PNG: to look at what a model produced.

Each panel is the 100-bin Vocos log-mel of one wav (24 kHz, resampled if
needed), on a shared colour scale so that levels compare across panels, with
time in seconds and mel bins upwards. A synthesis that is noise shows no
harmonics (horizontal striations in voiced stretches), no formant bands and no
pauses; speech shows all three.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shirabe.audio import load_audio

SAMPLE_RATE = 24000
HOP = 256


def log_mel(path: str | Path) -> np.ndarray:
    """``(100, frames)`` Vocos log-mel of a wav file."""
    import torch

    from shirabe.audio.mel import vocos_mel

    wav, _ = load_audio(path, sr=SAMPLE_RATE)
    return vocos_mel(torch.as_tensor(np.asarray(wav, dtype=np.float32))[None]).squeeze(0).numpy()


def spectrogram_png(wavs: list[str | Path], labels: list[str], out: str | Path, title: str = "") -> Path:
    """Write the spectrograms of ``wavs`` one above the other to ``out``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shirabe.eval.fonts import matplotlib_font_rc

    if len(wavs) != len(labels) or not wavs:
        raise ValueError("one label per wav, and at least one wav")
    mels = [log_mel(w) for w in wavs]
    with plt.rc_context(matplotlib_font_rc()):
        return _draw(plt, mels, labels, Path(out), title)


def _draw(plt, mels: list[np.ndarray], labels: list[str], out: Path, title: str) -> Path:
    hi = max(float(m.max()) for m in mels)
    lo = hi - 12.0  # natural-log units: about 52 dB of range
    seconds = max(m.shape[1] for m in mels) * HOP / SAMPLE_RATE
    fig, axes = plt.subplots(len(mels), 1, figsize=(9, 2.3 * len(mels) + 0.5), squeeze=False, layout="constrained")
    for ax, mel, label in zip(axes[:, 0], mels, labels, strict=True):
        im = ax.imshow(mel, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                       extent=(0, mel.shape[1] * HOP / SAMPLE_RATE, 0, mel.shape[0]))
        ax.set_xlim(0, seconds)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="log-mel", shrink=0.9)
    if title:
        fig.suptitle(title, fontsize=11)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
