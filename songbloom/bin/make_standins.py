"""Write small random-weight stand-ins of the released VAE and MuQ (see :mod:`songbloom.standins`).

``<output-dir>/vae.json`` + ``vae.ckpt`` (a 25 Hz Oobleck VAE) and
``<output-dir>/muq/`` (``config.json`` + ``model.safetensors``), in the
released formats, so a recipe runs end to end where the released files are
not at hand. Their latents decode to noise: use the released files for songs.
Existing files are kept (``--overwrite true`` rewrites them).
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from songbloom.standins import write_standin_muq, write_standin_vae

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.make_standins", description=__doc__)
    p.add_argument("--output-dir", type=Path, required=True, help="where the stand-ins go (required)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--vae-channels", type=int, default=8, help="width of the stand-in VAE (released: 128)")
    p.add_argument("--latent-dim", type=int, default=16, help="latent channels of the stand-in VAE (released: 64)")
    p.add_argument("--muq-dim", type=int, default=64, help="width of the stand-in MuQ (released: 1024)")
    p.add_argument("--muq-depth", type=int, default=2, help="conformer layers of the stand-in MuQ (released: 12)")
    add_bool_argument(p, "--overwrite", False, "rewrite existing stand-ins")
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    vae_done = (args.output_dir / "vae.ckpt").is_file()
    muq_done = (args.output_dir / "muq" / "model.safetensors").is_file()
    if not vae_done or args.overwrite:
        write_standin_vae(args.output_dir, args.seed, args.vae_channels, args.latent_dim)
    if not muq_done or args.overwrite:
        write_standin_muq(args.output_dir / "muq", args.seed, args.muq_dim, args.muq_depth)
    logger.info("stand-in codecs in %s: vae.json + vae.ckpt (25 Hz, %d latents), muq/ (%d-dim, %d layers); "
                "random weights, for running the pipeline only", args.output_dir, args.latent_dim, args.muq_dim,
                args.muq_depth)
    return 0


if __name__ == "__main__":
    run_main(main)
