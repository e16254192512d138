"""Command-line options of the denoising loop shared by the ACE-Step generation binaries."""

from __future__ import annotations

from shirabe.cli import add_bool_argument


def add_guidance_arguments(p) -> None:
    """Guidance scale and rule, omega, guidance window and decay, ERG switches, double-condition scales."""
    p.add_argument("--guidance-scale", type=float, default=15.0, help="guidance scale (0 or 1: no guidance)")
    p.add_argument("--cfg-type", choices=("apg", "cfg", "cfg_star"), default="apg", help="guidance rule")
    p.add_argument("--omega-scale", type=float, default=10.0, help="omega of the Euler step (update rescaling)")
    p.add_argument("--guidance-interval", type=float, default=0.5,
                   help="fraction of the steps (in the middle) that are guided")
    p.add_argument("--guidance-interval-decay", type=float, default=0.0,
                   help="linear decay of the scale toward --min-guidance-scale over the guided steps (0: none)")
    p.add_argument("--min-guidance-scale", type=float, default=3.0, help="the scale the decay heads for")
    add_bool_argument(p, "--use-erg-tag", True, "unconditional prompt states with attention temperature (ERG)")
    add_bool_argument(p, "--use-erg-lyric", True, "unconditional lyric states with attention temperature (ERG)")
    add_bool_argument(p, "--use-erg-diffusion", True, "unconditional DiT pass with attention temperature (ERG)")
    p.add_argument("--guidance-scale-text", type=float, default=0.0,
                   help="double-condition guidance: text scale (used when both it and --guidance-scale-lyric > 1)")
    p.add_argument("--guidance-scale-lyric", type=float, default=0.0, help="double-condition guidance: lyric scale")


GUIDANCE_FIELDS = ("guidance_scale", "cfg_type", "omega_scale", "guidance_interval", "guidance_interval_decay",
                   "min_guidance_scale", "use_erg_tag", "use_erg_lyric", "use_erg_diffusion",
                   "guidance_scale_text", "guidance_scale_lyric")


def guidance_from_args(args):
    """:class:`acestep.sampling.loop.GuidanceSettings` from parsed :func:`add_guidance_arguments` options."""
    from acestep.sampling.loop import GuidanceSettings

    return GuidanceSettings(**{name: getattr(args, name) for name in GUIDANCE_FIELDS})


def guidance_record(args) -> dict:
    """The guidance options as sidecar JSON fields."""
    return {name: getattr(args, name) for name in GUIDANCE_FIELDS}
