"""Conditional flow matching around the DiT estimator (Seed-VC V2's ``CFM``).

Training (OT-CFM, ``sigma_min`` 1e-6): ``t ~ U(0, 1)`` per item,
``y = (1 - (1 - σ)t)·z + t·x1``, target ``u = x1 - (1 - σ)z``; the first
``prompt_len`` frames of ``y`` are zeroed and given as ``prompt_x`` instead; L1
on frames ``[prompt_len, x_len)``.

Inference: Euler on the "sway" grid ``t = 1 - cos(π/2 · linspace(0, 1, n + 1))``,
the prompt frames of ``x`` zeroed after every step. Guidance rates
``[a, b] = [intelligibility, similarity]`` run the estimator on a batch of three:
full (prompt, style, content), content-only (prompt and style zeroed) and
unconditioned (all zeroed), ``v = (1 + a + b)·v_full - a·v_uncond - b·v_content``;
``a = 0`` or ``b = 0`` drop the unused branch, both 0 make one pass, and
``random_voice`` guides content-only against unconditioned with ``a``. Like
upstream, guidance works on batches of one.

F0 (SeedSVC): ``f0`` (B, T) Hz at mel frames, covering prompt and source frames,
is given to every branch that has the content and switched off in the
unconditioned one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sway_time_grid(n_timesteps: int, device=None) -> Tensor:
    t = torch.linspace(0, 1, n_timesteps + 1, device=device)
    return 1 - torch.cos(math.pi / 2 * t)


class CFM(nn.Module):
    def __init__(self, estimator: nn.Module, sigma_min: float = 1e-6, in_channels: int = 80):
        super().__init__()
        self.estimator = estimator
        self.sigma_min = sigma_min
        self.in_channels = in_channels

    def forward(
        self,
        x1: Tensor,
        x_lens: Tensor,
        prompt_lens: Tensor,
        mu: Tensor,
        style: Tensor,
        f0: Tensor | None = None,
    ) -> Tensor:
        """L1 flow-matching loss. ``x1`` (B, 80, T) target mel, ``mu`` (B, T, C) content."""
        b, _, t_len = x1.shape
        t = torch.rand(b, 1, 1, device=x1.device, dtype=x1.dtype)
        z = torch.randn_like(x1)
        y = (1 - (1 - self.sigma_min) * t) * z + t * x1
        u = x1 - (1 - self.sigma_min) * z
        frame = torch.arange(t_len, device=x1.device)[None, :]
        in_prompt = (frame < prompt_lens[:, None]).unsqueeze(1)  # (B, 1, T)
        prompt = x1 * in_prompt
        y = y * ~in_prompt
        v = self.estimator(y, prompt, x_lens, t.view(b), style, mu, f0=f0) if f0 is not None else \
            self.estimator(y, prompt, x_lens, t.view(b), style, mu)
        target_frames = ((frame >= prompt_lens[:, None]) & (frame < x_lens[:, None])).unsqueeze(1)
        err = (v - u).abs() * target_frames
        count = target_frames.sum().clamp(min=1) * x1.shape[1]
        return err.sum() / count

    @torch.inference_mode()
    def inference(
        self,
        mu: Tensor,
        x_lens: Tensor,
        prompt: Tensor,
        style: Tensor,
        n_timesteps: int = 30,
        temperature: float = 1.0,
        inference_cfg_rate=(0.7, 0.7),
        random_voice: bool = False,
        f0: Tensor | None = None,
        z: Tensor | None = None,
    ) -> Tensor:
        """Mel (B, 80, T) for content ``mu`` (B, T, C) after the prompt mel (B, 80, P).

        The first P output frames are zero (the caller keeps frames P..T-1). ``z``
        replaces the ``randn · temperature`` noise draw when given.
        """
        b, t_len = mu.shape[0], mu.shape[1]
        if z is None:
            z = torch.randn([b, self.in_channels, t_len], device=mu.device) * temperature
        t_span = sway_time_grid(n_timesteps, device=mu.device)
        return self.solve_euler(z, x_lens, prompt, mu, style, t_span, inference_cfg_rate, random_voice, f0)

    def _velocity(self, x, x_lens, t, prompt_x, style, mu, rates, random_voice, f0) -> Tensor:
        a, b = float(rates[0]), float(rates[1])
        est = self.estimator
        zeros_p, zeros_s, zeros_m = torch.zeros_like(prompt_x), torch.zeros_like(style), torch.zeros_like(mu)

        def run(n, prompts, styles, mus, keeps):
            kwargs = {}
            if f0 is not None:
                kwargs = {"f0": f0.repeat(n, 1), "f0_keep": torch.tensor(keeps, dtype=x.dtype, device=x.device)}
            return est(
                x.repeat(n, 1, 1), torch.cat(prompts), x_lens.repeat(n), t.repeat(n),
                torch.cat(styles), torch.cat(mus), **kwargs,
            )

        if random_voice:
            out = run(2, [zeros_p, zeros_p], [zeros_s, zeros_s], [mu, zeros_m], [1.0, 0.0])
            return (1.0 + a) * out[0:1] - a * out[1:2]
        if a == 0 and b == 0:
            return run(1, [prompt_x], [style], [mu], [1.0])
        if a == 0:
            out = run(2, [prompt_x, zeros_p], [style, zeros_s], [mu, mu], [1.0, 1.0])
            return (1.0 + b) * out[0:1] - b * out[1:2]
        if b == 0:
            out = run(2, [prompt_x, zeros_p], [style, zeros_s], [mu, zeros_m], [1.0, 0.0])
            return (1.0 + a) * out[0:1] - a * out[1:2]
        out = run(3, [prompt_x, zeros_p, zeros_p], [style, zeros_s, zeros_s], [mu, mu, zeros_m], [1.0, 1.0, 0.0])
        return (1.0 + a + b) * out[0:1] - a * out[2:3] - b * out[1:2]

    def solve_euler(
        self, x, x_lens, prompt, mu, style, t_span, inference_cfg_rate=(0.7, 0.7), random_voice=False, f0=None,
        step_callback=None,
    ) -> Tensor:
        """Euler integration over ``t_span`` (see the module docstring)."""
        if x.shape[0] != 1 and (random_voice or any(float(r) != 0 for r in inference_cfg_rate)):
            raise ValueError("guided sampling works on one item at a time (batch size 1)")
        t, dt = t_span[0], t_span[1] - t_span[0]
        p = prompt.shape[-1]
        prompt_x = torch.zeros_like(x)
        prompt_x[..., :p] = prompt[..., :p]
        x = x.clone()
        x[..., :p] = 0
        n = len(t_span) - 1
        for step in range(1, n + 1):
            v = self._velocity(x, x_lens, t.reshape(1).expand(x.shape[0]).contiguous() if x.shape[0] > 1
                               else t.reshape(1), prompt_x, style, mu, inference_cfg_rate, random_voice, f0)
            if step_callback is not None:
                step_callback(step, x, t, v)
            x = x + dt * v
            t = t + dt
            if step < n:
                dt = t_span[step + 1] - t
            x[..., :p] = 0
        return x
