"""Each fine-tuning mode trains exactly the parameters it claims, and nothing else moves."""

import pytest
import torch
from finetune_testlib import FIXTURE, build_tiny, random_batches, snapshot, train_steps

from zipvoice.finetune import (
    DEFAULT_LORA_TARGETS,
    FinetuneOptions,
    count_parameters,
    finetune_metadata,
    prepare_model_for_finetuning,
    trainable_state_dict,
)

PEFT_PREFIX = "base_model.model."


def base_name(name: str) -> str:
    """Name of a base weight inside a peft model, as in the plain ZipVoice."""
    return name.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")


def fixture_state() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE / "model.pt", weights_only=True)["model"]


def expected_trainable(names, mode, stacks=()):
    if mode == "full":
        return set(names)
    if mode == "freeze_decoder":
        return {n for n in names if not n.startswith("fm_decoder.")}
    if mode == "freeze_stacks":
        frozen = tuple(f"fm_decoder.encoders.{i}." for i in stacks)
        return {n for n in names if not n.startswith(frozen)}
    raise ValueError(mode)


@pytest.mark.parametrize(
    "opts",
    [
        FinetuneOptions(),
        FinetuneOptions(freeze_fm_decoder=True),
        FinetuneOptions(freeze_fm_decoder_stacks="1,3,4"),
    ],
    ids=["full", "freeze_decoder", "freeze_stacks"],
)
def test_full_and_freeze_modes(opts):
    model = prepare_model_for_finetuning(build_tiny(), opts, init_checkpoint=FIXTURE / "model.pt")
    # the fixture's weights were loaded
    ref = fixture_state()
    for name, value in model.state_dict().items():
        assert torch.equal(value, ref[name]), name
    names = [n for n, _ in model.named_parameters()]
    want = expected_trainable(names, opts.mode, opts.freeze_fm_decoder_stacks)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == want
    assert want and len(want) <= len(names)
    if opts.mode != "full":
        assert len(want) < len(names)

    before = snapshot(model)
    train_steps(model, random_batches(46, 3))
    after = snapshot(model)
    for n in names:
        if n in want:
            assert not torch.equal(before[n], after[n]), f"trainable {n} did not change"
        else:
            assert torch.equal(before[n], after[n]), f"frozen {n} changed"

    stored = trainable_state_dict(model, opts)
    assert set(stored) == set(ref)
    assert count_parameters(model) == (sum(after[n].numel() for n in want), sum(v.numel() for v in after.values()))


def _adapter_targets(model) -> set[str]:
    """Module names the default targets select, found independently of the package."""
    return {
        n for n, m in model.named_modules()
        if n.startswith("fm_decoder.") and isinstance(m, torch.nn.Linear)
        and any(n.endswith("." + t) for t in DEFAULT_LORA_TARGETS)
    }


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_adapter_modes_train_only_adapters(use_dora):
    opts = FinetuneOptions(use_lora=not use_dora, use_dora=use_dora, lora_rank=4, lora_alpha=8, lora_dropout=0.0)
    plain = build_tiny()
    targets = _adapter_targets(plain)
    # 5 stacks x 1 layer x 10 projections
    assert len(targets) == 50
    model = prepare_model_for_finetuning(plain, opts, init_checkpoint=FIXTURE / "model.pt")
    assert opts.mode == ("dora" if use_dora else "lora")

    suffixes = ("lora_A.default.weight", "lora_B.default.weight")
    if use_dora:
        suffixes += ("lora_magnitude_vector.default.weight",)
    want = {f"{PEFT_PREFIX}{t}.{s}" for t in targets for s in suffixes}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == want

    # the base weights are the fixture's
    ref = fixture_state()
    base_before = {base_name(n): p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    assert set(base_before) == set(ref)
    for n, v in base_before.items():
        assert torch.equal(v, ref[n]), n

    before = snapshot(model)
    train_steps(model, random_batches(46, 3))
    after = snapshot(model)
    for n in before:
        if n in want:
            assert not torch.equal(before[n], after[n]), f"adapter {n} did not change"
        else:
            assert torch.equal(before[n], after[n]), f"frozen {n} changed"

    stored = trainable_state_dict(model, opts)
    assert set(stored) == {n.removeprefix(PEFT_PREFIX) for n in want}
    for key, value in stored.items():
        assert torch.equal(value, after[PEFT_PREFIX + key])
    meta = finetune_metadata(opts)
    assert meta["mode"] == opts.mode and meta["lora_rank"] == 4 and meta["use_dora"] is use_dora
    assert meta["lora_target_modules"] == list(DEFAULT_LORA_TARGETS)
    assert FinetuneOptions.from_metadata(meta) == opts

    # rank-4 adapters per target: A (4 x in) + B (out x 4) (+ out magnitudes for DoRA)
    n_adapter = 0
    for t in targets:
        lin = plain.get_submodule(t).base_layer
        n_adapter += 4 * lin.in_features + lin.out_features * 4 + (lin.out_features if use_dora else 0)
    assert count_parameters(model) == (n_adapter, sum(v.numel() for v in ref.values()) + n_adapter)


def test_lora_with_extended_vocab_trains_the_embedding(tmp_path):
    base_lines = (FIXTURE / "tokens.txt").read_text(encoding="utf-8").splitlines()
    token_file = tmp_path / "tokens.txt"
    token_file.write_text("\n".join(base_lines + ["カ\t46", "ー\t47"]) + "\n", encoding="utf-8")
    opts = FinetuneOptions(use_lora=True, lora_rank=2)
    model = prepare_model_for_finetuning(build_tiny(48), opts, init_checkpoint=FIXTURE / "model.pt",
                                         base_token_file=FIXTURE / "tokens.txt", token_file=token_file)
    embed = PEFT_PREFIX + "embed.weight"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert embed in trainable
    assert all("lora_" in n for n in trainable - {embed})

    before = snapshot(model)
    # batches that use the new tokens
    batches = random_batches(48, 3)
    for tokens, *_ in batches:
        tokens[0][:2] = [46, 47]
    train_steps(model, batches)
    after = snapshot(model)
    assert not torch.equal(before[embed][46:], after[embed][46:])
    for n in before:
        if n not in trainable:
            assert torch.equal(before[n], after[n]), n
    stored = trainable_state_dict(model, opts)
    assert "embed.weight" in stored and stored["embed.weight"].shape == (48, 32)
    assert all("lora_" in k for k in set(stored) - {"embed.weight"})
