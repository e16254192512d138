"""Average the checkpoints of a training run into one model file, the icefall way.

--epoch E --avg N   averages over epochs E-N+1 .. E:
    exp-dir/epoch-{E}-avg-{N}.pt
--iter I --avg N    averages over the N+1 newest checkpoint-B.pt with B <= I:
    exp-dir/iter-{I}-avg-{N}.pt

With --use-averaged-model (the default) the result is the exact mean of the
weights over every batch of that range, computed from the running average
(``model_avg``) stored in the two checkpoints that bound it: epoch-(E-N).pt
and epoch-E.pt (so E-N >= 1). Without it, the ``model`` weights of epochs
E-N+1 .. E (or of the N newest checkpoints) are averaged.

The output is ``{"model": state_dict}``, loadable with
``zipvoice.models.load_model(exp_dir, "epoch-E-avg-N.pt")``. For adapter-only
(LoRA/DoRA) checkpoints the adapter weights are averaged and the fine-tuning
metadata is kept, ready for ``zipvoice.bin.merge_lora``.

Example:
  python -m zipvoice.bin.generate_averaged_model --exp-dir exp/zipvoice_ja --epoch 10 --avg 3
"""

from __future__ import annotations

from pathlib import Path

import torch

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_verbose_argument,
    get_logger,
    run_main,
    setup_logging,
)
from shirabe.train.checkpoint import (
    atomic_save,
    average_checkpoints,
    average_checkpoints_with_averaged_model,
    find_checkpoints,
    safe_load,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="zipvoice.bin.generate_averaged_model", description=__doc__)
    p.add_argument("--exp-dir", type=Path, default=Path("exp/zipvoice"), help="training directory")
    p.add_argument("--epoch", type=int, default=0, help="last epoch of the range (use this or --iter)")
    p.add_argument("--iter", type=int, default=0, help="last batch index of the range (use this or --epoch)")
    p.add_argument("--avg", type=int, default=1, help="number of epochs/checkpoints to average")
    add_bool_argument(p, "--use-averaged-model", True,
                      "use the running averages stored in the checkpoints (exact range mean)")
    p.add_argument("--output", type=Path, default=None,
                   help="output file (default: exp-dir/epoch-E-avg-N.pt or iter-I-avg-N.pt)")
    add_verbose_argument(p)
    return p


def select(args) -> tuple[str, list[Path]]:
    """Name of the result and the files to read (for the averaged model: [start, end])."""
    if (args.epoch > 0) == (args.iter > 0):
        raise InputError("give exactly one of --epoch and --iter (both > 0)")
    if args.avg < 1:
        raise InputError(f"--avg must be >= 1, got {args.avg}")
    exp = args.exp_dir
    if args.epoch > 0:
        name = f"epoch-{args.epoch}-avg-{args.avg}.pt"
        if args.use_averaged_model:
            start = args.epoch - args.avg
            if start < 1:
                raise InputError(f"--epoch {args.epoch} --avg {args.avg}: the range must start after epoch 1 "
                                 f"(epoch-{start}.pt does not exist); lower --avg or pass --use-averaged-model false")
            files = [exp / f"epoch-{start}.pt", exp / f"epoch-{args.epoch}.pt"]
        else:
            if args.avg > args.epoch:
                raise InputError(f"--epoch {args.epoch} --avg {args.avg}: there are only {args.epoch} epochs")
            files = [exp / f"epoch-{e}.pt" for e in range(args.epoch - args.avg + 1, args.epoch + 1)]
    else:
        name = f"iter-{args.iter}-avg-{args.avg}.pt"
        need = args.avg + 1 if args.use_averaged_model else args.avg
        found = [Path(f) for f in find_checkpoints(exp, iteration=-args.iter)][:need]
        if len(found) < need:
            raise InputError(f"{exp}: {need} checkpoint-B.pt with B <= {args.iter} needed, found {len(found)}")
        files = [found[-1], found[0]] if args.use_averaged_model else found
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: no such checkpoint")
    return name, files


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    name, files = select(args)
    last = safe_load(files[-1])
    if args.use_averaged_model:
        logger.info("averaging the batches between %s and %s", files[0].name, files[1].name)
        state = average_checkpoints_with_averaged_model(files[0], files[1])
    else:
        logger.info("averaging %s", ", ".join(f.name for f in files))
        state = average_checkpoints(files)
    # the running average is kept in float64; store the weights in the model's own dtypes
    ref = last.get("model", {})
    state = {k: v.to(ref[k].dtype) if k in ref and v.is_floating_point() else v for k, v in state.items()}
    out = {"model": state}
    if "finetune" in last:
        out["finetune"] = last["finetune"]
    output = args.output or args.exp_dir / name
    atomic_save(out, output)
    n_params = sum(v.numel() for v in state.values() if torch.is_tensor(v))
    logger.info("wrote %s (%d tensors, %d values)", output, len(state), n_params)
    return 0


if __name__ == "__main__":
    run_main(main)
