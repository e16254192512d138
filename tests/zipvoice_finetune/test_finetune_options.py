"""Fine-tuning flags: parsing, modes, and one-line errors for bad combinations."""

import argparse

import pytest
from finetune_testlib import build_tiny

from shirabe.cli import ArgumentParser, InputError
from zipvoice.finetune import (
    DEFAULT_LORA_TARGETS,
    FinetuneOptions,
    add_finetune_arguments,
    prepare_model_for_finetuning,
)


def parse(argv):
    p = ArgumentParser(prog="train")
    add_finetune_arguments(p)
    return FinetuneOptions.from_args(p.parse_args(argv))


def test_defaults_and_modes():
    opts = parse([])
    assert opts.mode == "full"
    assert (opts.lora_rank, opts.lora_alpha, opts.lora_dropout) == (16, 32.0, 0.05)
    assert opts.lora_target_modules == DEFAULT_LORA_TARGETS
    assert parse(["--freeze-fm-decoder", "true"]).mode == "freeze_decoder"
    assert parse(["--freeze-fm-decoder", "0"]).mode == "full"
    stacks = parse(["--freeze-fm-decoder-stacks", "2,3,4"])
    assert stacks.mode == "freeze_stacks" and stacks.freeze_fm_decoder_stacks == (2, 3, 4)
    lora = parse(["--use-lora", "1", "--lora-rank", "8", "--lora-alpha", "4", "--lora-target-modules",
                  "self_attn1.in_proj, feed_forward2.in_proj"])
    assert lora.mode == "lora" and lora.lora_rank == 8 and lora.lora_alpha == 4.0
    assert lora.lora_target_modules == ("self_attn1.in_proj", "feed_forward2.in_proj")
    assert parse(["--use-dora", "true"]).mode == "dora"
    assert parse(["--use-lora", "true", "--use-dora", "true"]).mode == "dora"
    # a namespace without the attributes gives the defaults
    assert FinetuneOptions.from_args(argparse.Namespace()) == FinetuneOptions()


def test_help_documents_every_flag():
    p = ArgumentParser(prog="train")
    add_finetune_arguments(p)
    text = p.format_help()
    for flag in ("--freeze-fm-decoder", "--freeze-fm-decoder-stacks", "--use-lora", "--use-dora",
                 "--lora-rank", "--lora-alpha", "--lora-dropout", "--lora-target-modules"):
        assert flag in text
    assert "0-based" in text


@pytest.mark.parametrize(
    "argv, option",
    [
        (["--use-lora", "true", "--freeze-fm-decoder", "true"], "--use-lora"),
        (["--use-dora", "true", "--freeze-fm-decoder-stacks", "1"], "--use-dora"),
        (["--freeze-fm-decoder", "1", "--freeze-fm-decoder-stacks", "1"], "--freeze-fm-decoder-stacks"),
        (["--freeze-fm-decoder-stacks", "1,x"], "--freeze-fm-decoder-stacks"),
        (["--freeze-fm-decoder-stacks", "-1"], "--freeze-fm-decoder-stacks"),
        (["--freeze-fm-decoder-stacks", "2,2"], "--freeze-fm-decoder-stacks"),
        (["--use-lora", "true", "--lora-rank", "0"], "--lora-rank"),
        (["--use-lora", "true", "--lora-alpha", "0"], "--lora-alpha"),
        (["--use-lora", "true", "--lora-dropout", "1.0"], "--lora-dropout"),
        (["--use-lora", "true", "--lora-target-modules", " , "], "--lora-target-modules"),
    ],
)
def test_bad_combinations(argv, option):
    with pytest.raises(InputError, match=option) as e:
        parse(argv)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "opts, option",
    [
        (FinetuneOptions(freeze_fm_decoder_stacks=(5,)), "--freeze-fm-decoder-stacks: stack 5 is out of range"),
        (FinetuneOptions(use_lora=True, lora_target_modules="feed_forward1"), "adapters go on nn.Linear"),
        (FinetuneOptions(use_lora=True, lora_target_modules="no_such_proj"), "names no module"),
    ],
)
def test_errors_that_need_the_model(opts, option):
    with pytest.raises(InputError, match=option):
        prepare_model_for_finetuning(build_tiny(), opts)
