"""Average the weights of a SongBloom run's last checkpoints into one model file.

The mean of the trained tensors stored in the newest ``--avg`` checkpoints
(``checkpoint-B.pt``; up to ``--iter B`` if given) of ``--exp-dir``. A full
run's checkpoints hold every weight; a LoRA run's only the trainable tensors,
which are averaged and merged into the base model (``--base``: the
``--checkpoint`` of the run). The result is a plain ``.pt`` in
upstream's layout beside the run's ``songbloom.yaml`` (``--output``, default
``<exp>/model-avg<K>.pt``), loadable with ``songbloom.models.load_model(yaml, pt)``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.train.checkpoint import average_checkpoints, find_checkpoints
from songbloom.models import load_model
from songbloom.training.release import (
    ADAPTER_NAME,
    CONFIG_NAME,
    MODEL_NAME,
    read_adapter,
    save_release,
    wrap_for_adapter,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.average", description=__doc__)
    p.add_argument("--exp-dir", type=Path, required=True, help="the training run (required)")
    p.add_argument("--avg", type=int, default=2, help="number of newest checkpoints to average")
    p.add_argument("--iter", type=int, default=0, help="newest checkpoint to use (0: the newest there is)")
    p.add_argument("--base", type=Path, default=None, help="LoRA runs: the base model's .pt (the run's --checkpoint) (default: none)")
    p.add_argument("--output", type=Path, default=None, help="file to write (default: <exp>/model-avg<K>.pt)")
    add_trust_checkpoint_argument(p)
    add_verbose_argument(p)
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    exp = args.exp_dir
    config = exp / CONFIG_NAME
    if not config.is_file():
        raise InputError(f"{config}: no such file (finish the training run first)")
    found = find_checkpoints(exp, args.iter)
    if len(found) < args.avg:
        raise InputError(f"{exp}: {len(found)} checkpoints, --avg {args.avg} needs that many")
    files = found[:args.avg]
    avg = average_checkpoints(files)
    lora = (exp / ADAPTER_NAME).is_file()
    if lora:
        if args.base is None:
            raise InputError(f"{exp} is a LoRA run: give its base model with --base")
        song = load_model(config, args.base, trust=args.trust_checkpoint)
        wrapped = wrap_for_adapter(song.model, read_adapter(exp / ADAPTER_NAME)["config"])
        wrapped.load_state_dict(avg, strict=False)
        core = wrapped.merge_and_unload()
    else:
        song = load_model(config, exp / MODEL_NAME, trust=args.trust_checkpoint)
        core = song.model
        try:
            core.load_state_dict(avg, strict=True)
        except RuntimeError as e:
            raise InputError(f"{files[0]}: does not fit {config} ({str(e).splitlines()[0]})") from None
    state = {f"vae.vae.{k}": v for k, v in (song.vae.vae.state_dict().items() if song.vae is not None else [])}
    state.update({f"model.{k}": v.detach().cpu() for k, v in core.state_dict().items()})
    out = args.output or exp / f"model-avg{args.avg}.pt"
    save_release(out, state)
    logger.info("wrote %s: the mean of %s", out, ", ".join(Path(f).name for f in files))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    run_main(main)
