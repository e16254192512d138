"""MVSA-DiTAR: SongBloom's interleaved autoregressive sketch LM with a per-patch latent DiT.

Sequence (P = ``block_size`` frames per patch, ``s`` = ``skeleton_emb`` of a sketch id,
``A_n`` = ``block_conv`` of patch n's latents)::

    [prompt rows (Lp)] [lyric rows (Ll)] [BOS] [s_1 .. s_P A_1] [s_1 .. s_P A_2] ...

A causal LLaMA (:mod:`shirabe.nn.llama`) runs over it with positions from 0 at the first
prompt row; the prefix outputs are dropped. In the BOS-based part, position i with
(i + 1) mod (P + 1) == 0 is a patch's last sketch slot: its output is the DiT condition ``h``
and gets no logit; every other position predicts the next sketch id through
``skeleton_classifier`` (BOS -> s_1, ..., A_n -> first id of patch n + 1, last A -> EOS).

The DiT (:mod:`songbloom.models.dit`) denoises one patch from the tokens
``[time, h, s_1..s_P, project_in(previous patch), project_in(noisy patch)]`` (3P + 2) and reads the
velocity from the last P outputs through ``project_out``. Training is rectified flow:
``x_t = (1 - t)·x0 + t·noise``, target ``noise - x0``, ``t = sigmoid(N(0, 1))``.

Module paths (for optimisers and LoRA): the lyric embedding table is
``condition_provider.conditioners.lyrics.output_proj``; LM linears are
``ar_transformer.layers.N.self_attn.{q,k,v,o}_proj`` and ``.mlp.{gate,up,down}_proj``; DiT linears
are ``nar_dit.layers.N.self_attn.{to_qkv,to_out}``, ``.ff.ff.0.{up_proj,gate_proj}`` and ``.ff.ff.2``
(see :data:`LM_LINEARS`, :data:`DIT_LINEARS` and :meth:`MVSADiTAR.parameter_groups`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from shirabe.nn.llama import KVCache, LlamaBackbone
from songbloom.models.conditioners import ConditionProvider, LyricBatch
from songbloom.models.config import ModelConfig
from songbloom.models.dit import DiTTransformer
from songbloom.models.sampling import (
    apply_repetition_penalty,
    cfg_combine,
    euler_with_temperature,
    sample_token,
)

LYRIC_EMBEDDING = "condition_provider.conditioners.lyrics.output_proj"
LM_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DIT_LINEARS = ("to_qkv", "to_out", "up_proj", "gate_proj", "ff.ff.2")
LEGACY_VAE_PREFIX = "condition_provider.conditioners.prompt_wav.tokenizer.vae."


@dataclass
class DiTAROutput:
    """The training forward's outputs (upstream names; no loss is reduced here).

    - ``ar_logit`` (B, T + 1, num_pitch + 1): logits at BOS, s_1..s_{P-1}, A_1, s_1, ... A_N;
    - ``ar_target`` (B, T + 1): the sketch ids, EOS at position ``x_len``, ``num_pitch + 1``
      (ignore) after it;
    - ``nar_pred``/``nar_target`` (blocks, P, D): DiT velocity and ``noise - x0`` for every valid
      patch, batch-major;
    - ``nar_t`` (blocks,): the flow times.
    """

    ar_logit: torch.Tensor
    ar_target: torch.Tensor
    nar_pred: torch.Tensor
    nar_target: torch.Tensor
    nar_t: torch.Tensor


@dataclass
class GenerationTrace:
    """What :meth:`MVSADiTAR.generate` saw at each step (for checks and debugging).

    ``raw_logits``: (2, C) classifier output per LM step, [conditional, null], before guidance;
    ``h``: (1, dim) DiT condition per patch; ``dit_x``/``dit_v``/``dit_t``: the sampler input,
    the guided velocity and t per patch and Euler step (lists of lists); ``noise``: per patch.
    """

    raw_logits: list[torch.Tensor] = field(default_factory=list)
    h: list[torch.Tensor] = field(default_factory=list)
    dit_x: list[list[torch.Tensor]] = field(default_factory=list)
    dit_v: list[list[torch.Tensor]] = field(default_factory=list)
    dit_t: list[list[torch.Tensor]] = field(default_factory=list)
    noise: list[torch.Tensor] = field(default_factory=list)


class PatchFlatten(nn.Module):
    """(B, D, N·P) latents -> (B, N, P·D) patches, frame-major (element k·D + c = latent[c, nP + k])."""

    def __init__(self, block_size: int):
        super().__init__()
        self.block_size = block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, d, t = x.shape
        return x.reshape(b, d, t // self.block_size, self.block_size).permute(0, 2, 3, 1).reshape(
            b, t // self.block_size, self.block_size * d)


class FourierFeatures(nn.Module):
    """t (B, 1) -> [cos f, sin f] with f = 2π · t · Wᵀ, W (out/2, 1)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features // 2, in_features))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * t @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


def _blocks(x: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """Concatenate the first counts[b] entries of x[b] over the batch."""
    return torch.cat([x[b, :n] for b, n in enumerate(counts)], dim=0)


class MVSADiTAR(nn.Module):
    """The SongBloom model (``model.*`` in a checkpoint). See the module docstring."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.config = c
        self.block_size = c.block_size
        self.latent_dim = c.latent_dim
        self.dim = c.dim
        self.num_pitch = c.num_pitch
        self.h_dropout = c.h_dropout
        self.bos_token = nn.Parameter(torch.empty(c.dim).normal_(mean=0.0, std=c.init_std))
        self.condition_provider = ConditionProvider(c)
        self.skeleton_emb = nn.Embedding(c.num_pitch + 2, c.dim)
        hidden = c.dim * c.hidden_scale
        self.ar_transformer = LlamaBackbone(c.dim, c.num_heads, c.lm_layers, hidden, c.rotary_base_val,
                                            c.rms_norm_eps)
        self.skeleton_classifier = nn.Sequential(nn.Linear(c.dim, c.dim, bias=False), nn.SiLU(),
                                                 nn.Linear(c.dim, c.num_classes))
        self.block_conv = nn.Sequential(PatchFlatten(c.block_size), nn.Linear(c.block_size * c.latent_dim, c.dim),
                                        nn.SiLU(), nn.Linear(c.dim, c.dim))
        self.project_in = nn.Linear(c.latent_dim, c.dim) if c.latent_dim != c.dim else nn.Identity()
        self.project_out = nn.Linear(c.dim, c.latent_dim) if c.latent_dim != c.dim else nn.Identity()
        self.timestep_features = FourierFeatures(1, c.timestep_features_dim)
        self.to_timestep_embed = nn.Sequential(nn.Linear(c.timestep_features_dim, c.dim, bias=False), nn.SiLU(),
                                               nn.Linear(c.dim, c.dim))
        self.nar_dit = DiTTransformer(c.dim, c.diff_layers, c.head_dim, hidden, c.dit_rotary_dims,
                                      c.dit_rotary_base)
        self.init_weights(c.init_std)

    # -- set-up -------------------------------------------------------------------------------

    @torch.no_grad()
    def init_weights(self, init_std: float = 0.02) -> None:
        """Upstream's initialisation: every Linear and Embedding N(0, init_std), biases 0, padding rows 0."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                if module.weight.is_meta:
                    continue
                module.weight.normal_(0.0, init_std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding) and not module.weight.is_meta:
                module.weight.normal_(0.0, init_std)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()

    @property
    def eos_id(self) -> int:
        return self.config.eos_id

    @property
    def ignore_id(self) -> int:
        return self.config.ignore_id

    @property
    def gradient_checkpointing(self) -> bool:
        return self.ar_transformer.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute every LM and DiT layer in the backward pass (training only)."""
        self.ar_transformer.gradient_checkpointing = bool(enabled)
        self.nar_dit.gradient_checkpointing = bool(enabled)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by part: ``lyric_embedding`` (lyric and sentence tables),
        ``prompt_proj``, ``sketch`` (BOS, sketch embedding, classifier), ``lm`` (the LLaMA) and
        ``dit`` (patch encoder, time embedding, DiT, projections). ``blank_emb`` is fixed."""
        lyrics = self.condition_provider.lyrics
        groups = {
            "lyric_embedding": [lyrics.output_proj.weight, lyrics.sentence_idx_in_structure_emb.weight],
            "prompt_proj": list(self.condition_provider.prompt.parameters()),
            "sketch": [self.bos_token, *self.skeleton_emb.parameters(), *self.skeleton_classifier.parameters()],
            "lm": list(self.ar_transformer.parameters()),
            "dit": [p for m in (self.block_conv, self.project_in, self.project_out, self.timestep_features,
                                self.to_timestep_embed, self.nar_dit) for p in m.parameters()],
        }
        return groups

    # -- pieces -------------------------------------------------------------------------------

    def conditions(self, lyrics: LyricBatch, prompt_latents: torch.Tensor | None,
                   prompt_lens: torch.Tensor | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{'prompt_wav': (B, Lp, dim) rows + mask, 'lyrics': (B, Ll, dim) rows + mask}``."""
        return self.condition_provider(lyrics, prompt_latents, prompt_lens)

    def cfg_conditions(self, lyrics: LyricBatch, prompt_latents: torch.Tensor | None,
                       prompt_lens: torch.Tensor | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Conditions of one song and its null twin, rows [conditional, null] (generation's batch)."""
        if len(lyrics) != 1:
            raise ValueError(f"generation takes one song, got {len(lyrics)} lyrics")
        cond = self.condition_provider(lyrics, prompt_latents, prompt_lens)
        null = self.condition_provider(LyricBatch.null(1, lyrics.ids.shape[1]), None)
        return {k: (torch.cat([cond[k][0], null[k][0].to(cond[k][0].dtype)]), torch.cat([cond[k][1], null[k][1]]))
                for k in cond}

    def lm_input(self, x_sketch: torch.Tensor, x_latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LM sequence after the prefix, ``[BOS] [s_1..s_P A_1] ...`` (B, 1 + N(P + 1), dim),
        and the sketch embeddings (B, T, dim)."""
        P = self.block_size
        B, T = x_sketch.shape
        sketch_emb = self.skeleton_emb(x_sketch.to(self.bos_token.device))
        latent_emb = self.block_conv(x_latent.to(device=self.bos_token.device, dtype=self.block_conv[1].weight.dtype))
        patches = sketch_emb.view(B, T // P, P, -1)
        seq = torch.cat([patches, latent_emb.unsqueeze(2).to(patches.dtype)], dim=2).reshape(B, -1, patches.shape[-1])
        bos = self.bos_token.reshape(1, 1, -1).expand(B, 1, -1).to(seq.dtype)
        return torch.cat([bos, seq], dim=1), sketch_emb

    def lm_forward(self, sequence: torch.Tensor, prefix: torch.Tensor | None,
                   cache: KVCache | None = None) -> torch.Tensor:
        """LLaMA over ``[prefix, sequence]`` (prefix may be ``None`` with a cache); the
        ``sequence`` part of the last hidden state."""
        x = sequence if prefix is None else torch.cat([prefix.to(sequence.dtype), sequence], dim=1)
        out = self.ar_transformer(x, cache)
        return out[:, -sequence.shape[1]:]

    def diffusion_forward(self, x: torch.Tensor, t: torch.Tensor, h: torch.Tensor, s: torch.Tensor,
                          history: torch.Tensor, cfg_coef: float | None = None) -> torch.Tensor:
        """Velocity (B, P, D) of noisy patches ``x`` at times ``t`` (B,) given ``h`` (B, dim),
        sketch embeddings ``s`` (B, P, dim) and the previous patches ``history`` (B, P, D).

        With ``cfg_coef`` the batch is doubled with zero ``h`` and ``s`` and the velocities
        combined as ``u + (c - u)·cfg_coef``.
        """
        if cfg_coef is not None:
            x, t, history = torch.cat([x, x]), torch.cat([t, t]), torch.cat([history, history])
            h = torch.cat([h, torch.zeros_like(h)])
            s = torch.cat([s, torch.zeros_like(s)])
        n = x.shape[1]
        weight = self.timestep_features.weight
        if isinstance(self.project_in, nn.Linear):
            x, history = x.to(self.project_in.weight.dtype), history.to(self.project_in.weight.dtype)
        tokens = self.project_in(torch.cat([history, x], dim=1))
        tokens = torch.cat([h.unsqueeze(1), s, tokens], dim=1)
        time = self.to_timestep_embed(self.timestep_features(t[:, None].to(weight.dtype)))
        tokens = torch.cat([time.unsqueeze(1), tokens], dim=1)
        out = self.project_out(self.nar_dit(tokens)[:, -n:])
        if cfg_coef is not None:
            cond, uncond = out.chunk(2, dim=0)
            out = cfg_combine(cond, uncond, cfg_coef)
        return out

    # -- training forward ---------------------------------------------------------------------

    def forward(self, x_sketch: torch.Tensor, x_latent: torch.Tensor, x_len: torch.Tensor, lyrics: LyricBatch,
                prompt_latents: torch.Tensor | None = None, prompt_lens: torch.Tensor | None = None, *,
                noise: torch.Tensor | None = None, t: torch.Tensor | None = None,
                t_normal: torch.Tensor | None = None,
                drop_u: tuple[torch.Tensor, torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> DiTAROutput:
        """The training forward (see :class:`DiTAROutput`).

        ``x_sketch`` (B, T) sketch ids padded with EOS, ``x_latent`` (B, D, T) latents, ``x_len``
        (B,) valid frames; T and every ``x_len`` are multiples of P. ``prompt_latents``
        (B, D, Tp) with ``prompt_lens`` (B,) (``None``: all frames; 0: a null prompt), or
        ``None`` for null prompts.

        Random draws, in upstream's order, from ``generator`` (default: torch's global
        generator) unless given: in train mode the h-dropout then s-dropout uniforms
        (``drop_u`` = (u_h, u_s), each (blocks,) or (blocks, 1)); then the flow times (``t`` in
        (0, 1), or ``t_normal`` whose sigmoid is t); then the flow noise ``noise``
        (blocks, P, D).
        """
        P = self.block_size
        B, T = x_sketch.shape
        x_len = x_len.to(torch.long)
        if T % P or x_latent.shape[-1] != T or bool((x_len % P != 0).any()) or bool((x_len > T).any()):
            raise ValueError(f"frames must be multiples of the patch size {P} (T={T}, latent frames "
                             f"{x_latent.shape[-1]}, x_len={x_len.tolist()})")
        counts = (x_len // P).tolist()
        N = T // P
        device = self.bos_token.device

        x_latent = x_latent.to(device)
        lm_input, sketch_emb = self.lm_input(x_sketch, x_latent)
        patches = sketch_emb.view(B, N, P, -1)

        padded = F.pad(x_sketch.to(device), (0, 1), value=self.eos_id)
        pos = torch.arange(T + 1, device=device)[None, :]
        lens = x_len.to(device)[:, None]
        ar_target = torch.where(pos < lens, padded, torch.where(pos == lens, torch.full_like(padded, self.eos_id),
                                                                 torch.full_like(padded, self.ignore_id)))

        conds = self.condition_provider(lyrics, prompt_latents, prompt_lens)
        lm_out = self.lm_forward(lm_input, ConditionProvider.prefix(conds, lm_input.dtype))

        idx = torch.arange(lm_out.shape[1], device=device)
        is_h = (idx + 1) % (P + 1) == 0
        ar_logit = self.skeleton_classifier(lm_out[:, ~is_h])
        h = _blocks(lm_out[:, is_h], counts)
        s = _blocks(patches, counts)
        blocks = h.shape[0]

        if self.training:
            if drop_u is None:
                u_h = torch.rand((blocks, 1), generator=generator)
                u_s = torch.rand((blocks, 1), generator=generator)
            else:
                u_h, u_s = (torch.as_tensor(u).reshape(blocks, 1) for u in drop_u)
            h = torch.masked_fill(h, (u_h.to(device) < self.h_dropout), 0)
            s = torch.masked_fill(s, (u_s.to(device) < self.h_dropout).unsqueeze(-1), 0)

        with torch.no_grad():
            lat = x_latent.reshape(B, -1, N, P).permute(0, 2, 3, 1)  # B, N, P, D
            current = _blocks(lat, counts)
            previous = _blocks(F.pad(lat, (0, 0, 0, 0, 1, 0)), counts)
            orig_dtype = x_latent.dtype
            with torch.autocast(device_type=device.type, enabled=False):
                if t is None:
                    if t_normal is None:
                        t_normal = torch.randn(blocks, generator=generator, dtype=h.dtype)
                    t = torch.sigmoid(torch.as_tensor(t_normal).to(device))
                t = torch.as_tensor(t).to(device).reshape(blocks)
                if noise is None:
                    noise = torch.randn(current.shape, generator=generator, dtype=current.dtype)
                noise = torch.as_tensor(noise).to(device=device, dtype=current.dtype)
                tt = t.to(current.dtype)[:, None, None]
                noised = current * (1 - tt) + noise * tt
                target = noise - current

        pred = self.diffusion_forward(noised.to(orig_dtype), t.to(orig_dtype), h, s, previous.to(h.dtype))
        return DiTAROutput(ar_logit=ar_logit, ar_target=ar_target, nar_pred=pred,
                           nar_target=target.to(orig_dtype), nar_t=t)

    # -- generation ---------------------------------------------------------------------------

    @staticmethod
    def max_patches(max_frames: float, block_size: int) -> int:
        """Patches the stop rule accepts: patch k is kept while the sequence before it,
        1 + (P + 1)(k - 1) positions, is not longer than max_frames / P · (P + 1)."""
        limit = max_frames / block_size * (block_size + 1)
        k = 0
        while 1 + (block_size + 1) * k <= limit:
            k += 1
        return k

    @torch.no_grad()
    def sample_patch(self, h: torch.Tensor, s: torch.Tensor, prev: torch.Tensor, noise: torch.Tensor, *,
                     steps: int, diff_temp: float, cfg_coef: float, dit_cfg_type: str = "h",
                     trace: GenerationTrace | None = None) -> torch.Tensor:
        """One patch (1, P, D) by the flow sampler; ``h`` is (2, dim) [conditional, null]."""
        if dit_cfg_type == "global":
            h2, s2, prev2, noise2 = h, torch.cat([s, s]), torch.cat([prev, prev]), torch.cat([noise, noise])

            def velocity(x, t):
                return self.diffusion_forward(x, t, h2, s2, prev2)
        else:
            guided = cfg_coef if dit_cfg_type == "h" else None
            h_c = h[:1]

            def velocity(x, t):
                return self.diffusion_forward(x, t, h_c, s, prev, cfg_coef=guided)
            noise2 = noise

        on_step = None
        if trace is not None:
            xs, vs, ts = [], [], []
            trace.dit_x.append(xs)
            trace.dit_v.append(vs)
            trace.dit_t.append(ts)

            def on_step(i, x, t, v):
                xs.append(x.detach().clone())
                vs.append(v.detach().clone())
                ts.append(t.detach().clone())
        x = euler_with_temperature(velocity, noise2, steps, diff_temp, on_step)
        if dit_cfg_type == "global":
            cond, uncond = x.chunk(2, dim=0)
            x = cfg_combine(cond, uncond, cfg_coef)
        return x

    @torch.no_grad()
    def generate(
        self,
        lyrics: LyricBatch,
        prompt_latents: torch.Tensor | None,
        prompt_lens: torch.Tensor | None = None,
        *,
        cfg_coef: float | tuple[float, float] = 1.5,
        temp: float = 0.9,
        top_k: int = 100,
        top_p: float = 0.0,
        use_sampling: bool = True,
        penalty_repeat: bool = True,
        penalty_window: int = 50,
        steps: int = 36,
        diff_temp: float = 0.95,
        dit_cfg_type: str = "h",
        max_frames: float = 3750,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None,
        noise_fn: Callable[[int, tuple, torch.dtype, torch.device], torch.Tensor] | None = None,
        use_cache: bool = True,
        draw_final_patch: bool = False,
        trace: GenerationTrace | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample one song: sketch tokens (1, T) and latents (1, D, T), T a multiple of P.

        - The LM runs on [conditional, null] rows (the null row has the null lyric and prompt);
          both rows get the sampled tokens. With ``use_cache`` the prefix is fed once and then
          one position per step; without, the whole sequence is recomputed every step.
        - Per sketch step: guidance, the repetition penalty (from the second patch: the last
          ``penalty_window`` accepted ids, left-padded with EOS, sliding inside the patch),
          temperature and top-k/top-p (:mod:`songbloom.models.sampling`).
        - After P ids, feeding the last one gives ``h`` (the conditional row); the patch is
          then sampled by :meth:`sample_patch` from ``noise`` (``noise_fn(patch, shape, dtype,
          device)`` or a draw from ``generator``) and fed back as ``block_conv(patch)``.
        - Stop rule (upstream's): a patch with EOS among its ids ends the song (and is dropped);
          so does the frame budget (:meth:`max_patches`). Upstream samples the patch after the
          budget and then drops it; ``draw_final_patch=True`` does the same (and finishes a
          patch after an EOS) so traces and random streams line up, otherwise that work is
          skipped. The output is identical either way.
        - ``progress(patches_done, max_patches)`` after every accepted patch.
        - ``cfg_coef`` may be a pair (LM, DiT). ``dit_cfg_type``: ``h`` (guide the DiT with
          zero h and s), ``global`` (two DiT runs, combined after sampling) or ``none``.
        """
        if self.training:
            raise RuntimeError("generate() needs eval mode")
        if dit_cfg_type not in ("h", "global", "none"):
            raise ValueError(f"dit_cfg_type must be h, global or none, got {dit_cfg_type!r}")
        cfg_lm, cfg_dit = (cfg_coef if isinstance(cfg_coef, (tuple, list)) else (cfg_coef, cfg_coef))
        P, D = self.block_size, self.latent_dim
        device = self.bos_token.device
        dtype = self.bos_token.dtype
        conds = self.cfg_conditions(lyrics, prompt_latents, prompt_lens)
        prefix = ConditionProvider.prefix(conds, dtype)
        budget = self.max_patches(max_frames, P)
        limit = max_frames / P * (P + 1)

        capacity = prefix.shape[1] + 1 + (budget + 1) * (P + 1)
        cache = self.ar_transformer.new_cache(capacity) if use_cache else None
        fed: list[torch.Tensor] = []  # everything after the prefix (no-cache path)
        first = True

        def lm_last(new: torch.Tensor) -> torch.Tensor:
            nonlocal first
            if cache is not None:
                out = self.lm_forward(new, prefix if first else None, cache)
            else:
                fed.append(new)
                out = self.lm_forward(torch.cat(fed, dim=1), prefix)
            first = False
            return out[:, -1]

        pending = self.bos_token.reshape(1, 1, -1).expand(2, 1, -1)
        prev = torch.zeros(1, P, D, device=device, dtype=dtype)
        tokens: list[torch.Tensor] = []
        latents: list[torch.Tensor] = []
        history = torch.zeros(1, 0, dtype=torch.long, device=device)
        seq_len, patch = 1, 0
        while True:
            over_budget = seq_len > limit
            if over_budget and not draw_final_patch:
                break
            pool = None
            if penalty_repeat and history.shape[1] > 0:
                pool = history[:, -penalty_window:]
                if pool.shape[1] < penalty_window:
                    pool = F.pad(pool, (penalty_window - pool.shape[1], 0), value=self.eos_id)
            ids, embs, eos = [], [], False
            for _ in range(P):
                out = lm_last(pending)
                raw = self.skeleton_classifier(out)
                if trace is not None:
                    trace.raw_logits.append(raw.detach().clone())
                logits = cfg_combine(raw[:1], raw[1:], cfg_lm)
                if pool is not None:
                    logits = apply_repetition_penalty(logits, pool, self.num_pitch)
                token = sample_token(logits, temp=temp, top_k=top_k, top_p=top_p, use_sampling=use_sampling,
                                     generator=generator)
                if pool is not None:
                    pool = torch.cat([pool, token[:, None]], dim=1)[:, 1:]
                emb = self.skeleton_emb(token)
                ids.append(token)
                embs.append(emb)
                pending = emb.unsqueeze(1).expand(2, 1, -1)
                if int(token[0]) == self.eos_id:
                    eos = True
                    if not draw_final_patch:
                        break
            if eos and not draw_final_patch:
                break
            h = lm_last(pending)
            if trace is not None:
                trace.h.append(h[:1].detach().clone())
            shape = (1, P, D)
            if noise_fn is not None:
                noise = torch.as_tensor(noise_fn(patch, shape, dtype, device)).to(device=device, dtype=dtype)
            else:
                gen_device = generator.device if generator is not None else device
                noise = torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
            if trace is not None:
                trace.noise.append(noise.detach().clone())
            s = torch.stack(embs, dim=1)
            latent = self.sample_patch(h, s, prev, noise, steps=steps, diff_temp=diff_temp, cfg_coef=cfg_dit,
                                       dit_cfg_type=dit_cfg_type, trace=trace)
            if eos or over_budget:
                break
            patch_ids = torch.stack(ids, dim=1)
            tokens.append(patch_ids)
            latents.append(latent)
            history = torch.cat([history, patch_ids], dim=1)
            pending = self.block_conv(latent.transpose(1, 2)).expand(2, 1, -1)
            prev = latent
            seq_len += P + 1
            patch += 1
            if progress is not None:
                progress(patch, budget)
        if not tokens:
            return (torch.zeros(1, 0, dtype=torch.long, device=device),
                    torch.zeros(1, D, 0, device=device, dtype=dtype))
        return torch.cat(tokens, dim=1), torch.cat(latents, dim=1).transpose(1, 2)
