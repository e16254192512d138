"""Sampling pieces of SongBloom's generation: sketch-token choice and the patch flow sampler.

Sketch tokens (per LM step, batch of one song):

1. classifier-free guidance ``l = u + (c - u) · cfg_coef`` over the [conditional, null] rows;
2. the repetition penalty: every distinct id of the penalty pool below ``num_pitch`` (EOS never)
   gets ``l[id] / 1.1`` (a division, so negative logits move up);
3. ``softmax(l / temp)`` then top-p (when ``top_p > 0``), else top-k (when ``top_k > 0``), else
   the full distribution, sampled with the caller's generator; ``temp == 0`` or
   ``use_sampling=False`` takes the argmax.

Latent patches: :func:`euler_with_temperature` (rectified flow, t from 1 to 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PENALTY = 1.1


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, coef: float) -> torch.Tensor:
    return uncond + (cond - uncond) * coef


def apply_repetition_penalty(logits: torch.Tensor, pool: torch.Tensor, num_pitch: int) -> torch.Tensor:
    """``logits`` (B, C) with every distinct id of ``pool`` (B, W) below ``num_pitch`` divided by 1.1."""
    out = logits.clone()
    for b in range(logits.shape[0]):
        ids = torch.unique(pool[b])
        ids = ids[(ids >= 0) & (ids < num_pitch)]
        out[b, ids] = out[b, ids] / PENALTY
    return out


def _multinomial(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = probs.device
    if generator is not None and generator.device != device:
        probs = probs.to(generator.device)
    return torch.multinomial(probs.float(), 1, generator=generator).to(device)


def sample_token(logits: torch.Tensor, *, temp: float, top_k: int = 0, top_p: float = 0.0,
                 use_sampling: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """One id per row of ``logits`` (B, C) -> (B,)."""
    if not use_sampling or temp <= 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temp, dim=-1)
    if top_p > 0.0:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        sorted_probs = sorted_probs * ((cumulative - sorted_probs) <= top_p).to(sorted_probs.dtype)
        sorted_probs = sorted_probs / sorted_probs.sum(dim=-1, keepdim=True)
        pick = _multinomial(sorted_probs, generator)
        return torch.gather(order, -1, pick).squeeze(-1)
    if top_k > 0:
        k = min(top_k, probs.shape[-1])
        kth = torch.topk(probs, k, dim=-1).values[..., -1:]
        probs = probs * (probs >= kth).to(probs.dtype)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return _multinomial(probs, generator).squeeze(-1)


def euler_with_temperature(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    steps: int,
    temperature: float = 1.0,
    on_step: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Rectified-flow Euler from t = 1 to 0 over ``steps`` equal steps, with a noise temperature.

    The grid is ``linspace(1, 0, steps + 1)``. With ``temperature >= 1`` x starts at ``noise``
    and every step is ``x += (t_next - t) · v``. Below 1, x starts at **zeros**; the one step
    that crosses the temperature (``t > temperature >= t_next``) predicts ``x0 = x - v`` (not
    ``x - t·v``) and restarts from ``x = (1 - t_next) · x0 + t_next · noise``; the other steps are
    plain Euler. ``on_step(i, x, t, v)`` sees each step's input and velocity.
    """
    grid = torch.linspace(1.0, 0.0, steps + 1)
    x = noise if temperature >= 1.0 else torch.zeros_like(noise)
    for i in range(steps):
        t_curr, t_next = grid[i], grid[i + 1]
        t = t_curr * torch.ones((x.shape[0],), dtype=x.dtype, device=x.device)
        v = velocity(x, t)
        if on_step is not None:
            on_step(i, x, t, v)
        if t_curr > temperature and t_next <= temperature:
            x = (1 - t_next) * (x - v) + t_next * noise
        else:
            x = x + (t_next - t_curr) * v
    return x
