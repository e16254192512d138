"""Adapter checkpoints: rebuild, merge with zipvoice.bin.merge_lora, same outputs as the adapted model."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from finetune_testlib import FIXTURE, build_tiny, random_batches, train_steps

from shirabe.cli import InputError
from shirabe.train.checkpoint import atomic_save
from zipvoice.bin import merge_lora
from zipvoice.finetune import (
    FinetuneOptions,
    finetune_metadata,
    load_adapter_checkpoint,
    load_trainable_state_dict,
    merge_adapters,
    prepare_model_for_finetuning,
    trainable_state_dict,
)
from zipvoice.models import load_model


def decoder_inputs():
    with np.load(FIXTURE / "cases.npz", allow_pickle=False) as f:
        return {k: torch.from_numpy(f[k]) for k in ("fm_xt", "fm_text_condition", "fm_speech_condition",
                                                      "fm_padding_mask")}


@torch.no_grad()
def velocity(model, t=0.3):
    x = decoder_inputs()
    return model.forward_fm_decoder(t=t, xt=x["fm_xt"], text_condition=x["fm_text_condition"],
                                    speech_condition=x["fm_speech_condition"], padding_mask=x["fm_padding_mask"])


@torch.no_grad()
def generate(model):
    torch.manual_seed(7)
    noise = torch.randn(1, 30, 100)
    prompt = 0.3 * torch.randn(1, 12, 100)
    out, *_ = model.sample([[1, 46, 2, 3, 47]] if model.embed.num_embeddings > 46 else [[1, 5, 2, 3, 9]],
                           [[4, 6, 7]], prompt, torch.tensor([12]), features_lens=torch.tensor([18]),
                           duration="real", num_step=3, guidance_scale=1.0, t_shift=0.5, noise=noise)
    return out


def train_adapters(tmp_path, opts, vocab=46, token_file=None, steps=4):
    model = prepare_model_for_finetuning(build_tiny(vocab), opts, init_checkpoint=FIXTURE / "model.pt",
                                         token_file=token_file)
    batches = random_batches(vocab, steps)
    if vocab > 46:
        for tokens, *_ in batches:
            tokens[0][:2] = [46, 47]
    train_steps(model, batches, lr=2e-2)
    ckpt = tmp_path / "epoch-1.pt"
    atomic_save({"model": trainable_state_dict(model, opts), "finetune": finetune_metadata(opts),
                 "batch_idx_train": steps}, ckpt)
    return model.eval(), ckpt


ACTIVATION_LINEAR_TARGETS = "feed_forward1.out_proj,conv_module1.out_proj,self_attn1.in_proj"


@pytest.mark.parametrize("targets", [None, ACTIVATION_LINEAR_TARGETS], ids=["default", "activation_linear"])
@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_merge_gives_the_adapted_outputs(tmp_path, use_dora, targets):
    opts = FinetuneOptions(use_lora=True, use_dora=use_dora, lora_rank=4, lora_alpha=8,
                           **({"lora_target_modules": targets} if targets else {}))
    adapted, ckpt = train_adapters(tmp_path, opts)
    v_adapted = velocity(adapted)
    base = load_model(FIXTURE)
    assert (v_adapted - velocity(base)).abs().max() > 1e-3  # the adapters do something

    # rebuilt from base + adapter-only checkpoint
    rebuilt = load_adapter_checkpoint(load_model(FIXTURE), ckpt)
    torch.testing.assert_close(velocity(rebuilt), v_adapted, rtol=0, atol=1e-6)

    # resumed: the same preparation, then the stored adapters
    resumed = prepare_model_for_finetuning(build_tiny(), opts, init_checkpoint=FIXTURE / "model.pt")
    load_trainable_state_dict(resumed, torch.load(ckpt, weights_only=True)["model"])
    torch.testing.assert_close(velocity(resumed.eval()), v_adapted, rtol=0, atol=1e-6)
    # an adapter checkpoint is no initial model
    with pytest.raises(InputError, match="holds LoRA/DoRA adapters"):
        prepare_model_for_finetuning(build_tiny(), FinetuneOptions(), init_checkpoint=ckpt)

    out = tmp_path / "merged"
    assert merge_lora.main(["--model-dir", str(FIXTURE), "--adapter-checkpoint", str(ckpt),
                            "--output-dir", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"model.pt", "model.json", "tokens.txt"}
    merged = load_model(out)  # strict
    ref = torch.load(FIXTURE / "model.pt", weights_only=True)["model"]
    state = torch.load(out / "model.pt", weights_only=True)
    assert set(state) == {"model"}
    assert {k: tuple(v.shape) for k, v in state["model"].items()} == {k: tuple(v.shape) for k, v in ref.items()}
    assert (FIXTURE / "tokens.txt").read_bytes() == (out / "tokens.txt").read_bytes()
    torch.testing.assert_close(velocity(merged), v_adapted, rtol=0, atol=1e-5)
    torch.testing.assert_close(velocity(merged, t=0.7), velocity(adapted, t=0.7), rtol=0, atol=1e-5)
    torch.testing.assert_close(generate(merged), generate(adapted), rtol=0, atol=1e-5)

    # merging in memory gives the same model
    in_memory = merge_adapters(rebuilt)
    assert set(in_memory.state_dict()) == set(ref)
    torch.testing.assert_close(velocity(in_memory), v_adapted, rtol=0, atol=1e-5)


def test_merge_with_extended_token_table(tmp_path):
    token_file = tmp_path / "tokens.txt"
    token_file.write_text((FIXTURE / "tokens.txt").read_text(encoding="utf-8") + "カ\t46\nー\t47\n",
                          encoding="utf-8")
    opts = FinetuneOptions(use_lora=True, lora_rank=2)
    adapted, ckpt = train_adapters(tmp_path, opts, vocab=48, token_file=token_file)

    out = tmp_path / "merged"
    with pytest.raises(InputError, match="holds no trained embedding|has 48 rows"):
        # without --token-file the base table (46 tokens) does not fit the trained embedding
        merge_lora.main(["--model-dir", str(FIXTURE), "--adapter-checkpoint", str(ckpt), "--output-dir", str(out)])
    assert merge_lora.main(["--model-dir", str(FIXTURE), "--adapter-checkpoint", str(ckpt),
                            "--token-file", str(token_file), "--output-dir", str(out)]) == 0
    merged = load_model(out)
    assert merged.embed.num_embeddings == 48
    assert token_file.read_bytes() == (out / "tokens.txt").read_bytes()
    torch.testing.assert_close(merged.embed.weight, adapted.get_base_model().embed.weight, rtol=0, atol=0)
    torch.testing.assert_close(generate(merged), generate(adapted), rtol=0, atol=1e-5)


def test_merge_errors(tmp_path):
    opts = FinetuneOptions(freeze_fm_decoder=True)
    model = prepare_model_for_finetuning(build_tiny(), opts, init_checkpoint=FIXTURE / "model.pt")
    full = tmp_path / "full.pt"
    atomic_save({"model": trainable_state_dict(model, opts), "finetune": finetune_metadata(opts)}, full)
    out = str(tmp_path / "out")
    with pytest.raises(InputError, match="holds no LoRA/DoRA adapters"):
        merge_lora.main(["--model-dir", str(FIXTURE), "--adapter-checkpoint", str(full), "--output-dir", out])
    with pytest.raises(InputError, match="no such checkpoint file"):
        merge_lora.main(["--model-dir", str(FIXTURE), "--adapter-checkpoint", str(tmp_path / "missing.pt"),
                         "--output-dir", out])
    incomplete = tmp_path / "base"
    incomplete.mkdir()
    shutil.copy(FIXTURE / "model.json", incomplete)
    with pytest.raises(InputError, match="tokens.txt: no such file"):
        merge_lora.main(["--model-dir", str(incomplete), "--adapter-checkpoint", str(full), "--output-dir", out])

    # as a command: one line on stderr, exit status 2
    proc = subprocess.run(
        [sys.executable, "-m", "zipvoice.bin.merge_lora", "--model-dir", str(FIXTURE),
         "--adapter-checkpoint", str(full), "--output-dir", out],
        capture_output=True, text=True, timeout=120, cwd=FIXTURE.parents[2],
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "error:" in last and "holds no LoRA/DoRA adapters" in last
    assert "Traceback" not in proc.stderr
