"""Inverse STFT as one transposed convolution (ONNX-exportable).

For a one-sided spectrum ``X_k = a_k + i b_k`` (k = 0..N/2) the inverse real DFT
of a frame is

    x[n] = (1/N) * sum_k c_k * (a_k cos(2 pi k n / N) - b_k sin(2 pi k n / N))

with ``c_0 = c_{N/2} = 1`` and ``c_k = 2`` otherwise (the imaginary parts of the
DC and Nyquist bins do not contribute, as in ``irfft``). Multiplying by the
synthesis window ``w[n]`` and overlap-adding frames ``hop`` samples apart is a
``conv_transpose1d`` over the stacked ``[a; b]`` channels with the kernel

    K[k, n]       =  c_k cos(2 pi k n / N) w[n] / N
    K[F + k, n]   = -c_k sin(2 pi k n / N) w[n] / N

(F = N/2 + 1). The kernel is built in float64 and cast to float32. The result is
divided by the overlap-added squared window (least-squares ISTFT) and trimmed:

- ``center``: ``(N // 2)`` samples each side, as ``torch.istft(center=True)``
  → ``(T - 1) * hop`` samples;
- ``same``:   ``(N - hop) // 2`` samples each side, as the Vocos ISTFT head
  → ``T * hop`` samples.

No complex tensors, FFTs or data-dependent control flow are involved, so the
module traces and exports with ``torch.onnx.export(..., dynamo=False)``. In
eager mode the same result is computed faster with ``irfft`` and ``fold``
(see :class:`ISTFT`'s ``method``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shirabe.audio.mel import hann_window

PADDINGS = ("center", "same")
METHODS = ("auto", "conv", "fft")


def synthesis_kernel(window: torch.Tensor, n_fft: int) -> torch.Tensor:
    """``(n_fft + 2, 1, n_fft)`` windowed inverse-real-DFT kernel (see module doc)."""
    n_bins = n_fft // 2 + 1
    k = np.arange(n_bins, dtype=np.float64)[:, None]
    n = np.arange(n_fft, dtype=np.float64)[None, :]
    angle = 2.0 * math.pi * ((k * n) % n_fft) / n_fft
    scale = np.full((n_bins, 1), 2.0)
    scale[0] = 1.0
    if n_fft % 2 == 0:
        scale[-1] = 1.0
    cos = scale * np.cos(angle)
    sin = -scale * np.sin(angle)
    sin[0] = 0.0
    if n_fft % 2 == 0:
        sin[-1] = 0.0
    w = window.detach().to("cpu", torch.float64).numpy()[None, :]
    kernel = np.concatenate([cos, sin], axis=0) * w / n_fft
    return torch.from_numpy(kernel).to(torch.float32).unsqueeze(1)


class ISTFT(nn.Module):
    """Inverse STFT of ``(real, imag)`` spectra, each (B, n_fft // 2 + 1, T) → (B, S).

    ``window`` is a persistent buffer (the Vocos head stores it in its
    state_dict); the synthesis kernel is rebuilt from it whenever weights are
    loaded.

    ``method``: ``"conv"`` always uses the transposed convolution; ``"fft"``
    uses ``irfft`` + ``fold`` (about 2.5x faster in eager PyTorch on CPU,
    not exportable); ``"auto"`` (default) takes ``"conv"`` while tracing or
    exporting to ONNX and ``"fft"`` otherwise. Both give the same samples to
    float32 rounding.
    """

    def __init__(
        self, n_fft: int, hop_length: int, win_length: int | None = None, padding: str = "same", method: str = "auto"
    ):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.method = method
        win_length = n_fft if win_length is None else win_length
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if win_length != n_fft:
            raise ValueError(f"win_length ({win_length}) must equal n_fft ({n_fft})")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.padding = padding
        self.register_buffer("window", hann_window(n_fft))
        self.register_buffer("kernel", synthesis_kernel(self.window, n_fft), persistent=False)
        self.register_buffer("window_sq", (self.window.double() ** 2).float().view(1, 1, -1), persistent=False)
        self.register_load_state_dict_post_hook(ISTFT._rebuild_after_load)

    @staticmethod
    def _rebuild_after_load(module: ISTFT, incompatible_keys) -> None:
        module.rebuild()

    @torch.no_grad()
    def rebuild(self) -> None:
        """Recompute the synthesis kernel and squared window from ``self.window``."""
        dev = self.window.device
        self.kernel = synthesis_kernel(self.window, self.n_fft).to(dev)
        self.window_sq = (self.window.double() ** 2).float().view(1, 1, -1).to(dev)

    @property
    def trim(self) -> int:
        return self.n_fft // 2 if self.padding == "center" else (self.n_fft - self.hop_length) // 2

    def output_length(self, num_frames: int) -> int:
        if self.padding == "center":
            return (num_frames - 1) * self.hop_length
        return num_frames * self.hop_length

    def _use_conv(self) -> bool:
        if self.method != "auto":
            return self.method == "conv"
        return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()

    def forward(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        num_frames = real.shape[-1]
        if self._use_conv():
            spec = torch.cat([real, imag], dim=1)  # (B, n_fft + 2, T)
            signal = F.conv_transpose1d(spec, self.kernel, stride=self.hop_length)[:, 0]  # (B, L)
        else:
            frames = torch.fft.irfft(torch.complex(real, imag), n=self.n_fft, dim=1)
            frames = frames * self.window[None, :, None]
            length = (num_frames - 1) * self.hop_length + self.n_fft
            signal = F.fold(
                frames, output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length)
            )[:, 0, 0]
        ones = torch.ones_like(real[:1, :1, :])
        envelope = F.conv_transpose1d(ones, self.window_sq, stride=self.hop_length)[:, 0]  # (1, L)
        t = self.trim
        end = signal.shape[-1] - t
        return signal[:, t:end] / torch.clamp(envelope[:, t:end], min=1e-11)
