"""The options every train binary shares: parsing, checks, the --use-fp16 alias."""

import pytest

from shirabe.cli import ArgumentParser, InputError
from shirabe.train.options import (
    add_training_arguments,
    check_training_arguments,
    loop_params,
    resolve_dtype,
)


def parse(*argv, **defaults):
    p = ArgumentParser(prog="t")
    add_training_arguments(p, **defaults)
    return p.parse_args(list(argv))


def test_defaults_and_values():
    a = parse()
    assert (a.device, a.dtype, a.accum_grad, a.max_grad_norm, a.gradient_checkpointing, a.world_size) == \
        ("auto", "float32", 1, 0.0, False, 1)
    a = parse("--dtype", "bf16", "--accum-grad", "4", "--max-grad-norm", "1.5", "--gradient-checkpointing", "true",
              "--device", "cuda:1", seed=7)
    assert loop_params(a) == {"seed": 7, "accum_grad": 4, "max_grad_norm": 1.5, "gradient_checkpointing": True,
                              "dtype": "bf16"}
    assert a.device == "cuda:1"
    with pytest.raises(SystemExit):
        parse("--dtype", "fp8")


def test_use_fp16_alias_overrides_dtype():
    assert resolve_dtype(parse(dtype="fp16", use_fp16_alias=True)) == "fp16"
    assert resolve_dtype(parse("--use-fp16", "0", dtype="fp16", use_fp16_alias=True)) == "float32"
    assert resolve_dtype(parse("--use-fp16", "1", "--dtype", "bf16", use_fp16_alias=True)) == "fp16"
    assert not hasattr(parse(), "use_fp16")


@pytest.mark.parametrize("argv,message", [
    (("--accum-grad", "0"), "--accum-grad must be >= 1, got 0"),
    (("--max-grad-norm", "-1"), "--max-grad-norm must be >= 0"),
    (("--world-size", "0"), "--world-size must be >= 1"),
    (("--num-threads", "0"), "--num-threads must be >= 1"),
])
def test_bad_values_are_one_line_errors(argv, message):
    with pytest.raises(InputError, match=message):
        check_training_arguments(parse(*argv))


def test_help_shows_every_default(capsys):
    p = ArgumentParser(prog="t")
    add_training_arguments(p, max_grad_norm=None)
    help_text = " ".join(p.format_help().split())
    for needle in ("--accum-grad N accumulate", "(default: 1)", "--dtype {float32,bf16,fp16}",
                   "(default: the config's)", "--gradient-checkpointing BOOL", "(default: false)"):
        assert needle in help_text, needle


def test_resume_point_and_its_checks(tmp_path):
    from shirabe.train.options import add_schedule_arguments, check_schedule_arguments, resume_point

    p = ArgumentParser(prog="train")
    add_schedule_arguments(p, exp_dir=str(tmp_path), num_epochs=3, save_every_n=10)
    fresh = p.parse_args([])
    assert resume_point(fresh) is None
    check_schedule_arguments(fresh)
    by_batch = p.parse_args(["--start-batch", "20", "--start-epoch", "3"])
    assert resume_point(by_batch) == (tmp_path / "checkpoint-20.pt", True)
    with pytest.raises(InputError, match=r"checkpoint-20\.pt: no such checkpoint to resume from"):
        check_schedule_arguments(by_batch)
    by_epoch = p.parse_args(["--start-epoch", "3"])
    assert resume_point(by_epoch) == (tmp_path / "epoch-2.pt", False)
    (tmp_path / "epoch-2.pt").write_bytes(b"")
    check_schedule_arguments(by_epoch)
    with pytest.raises(InputError, match="--start-epoch must be >= 1, got 0"):
        check_schedule_arguments(p.parse_args(["--start-epoch", "0"]))
    with pytest.raises(InputError, match="--average-period must be >= 1, got 0"):
        check_schedule_arguments(p.parse_args(["--average-period", "0"]))
