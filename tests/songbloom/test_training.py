"""SongBloom training: the loss falls, each mode updates exactly what it claims, LoRA merges exactly,
and the model folder a run leaves is loadable."""

import json
import sys
from pathlib import Path

import pytest
import torch
from lhotse import CutSet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songbloom_train_testlib import write_config, write_cuts  # noqa: E402

from songbloom.bin import average, merge_lora, score_dev, train  # noqa: E402
from songbloom.models import SongBloom, load_config, load_model  # noqa: E402
from songbloom.training.data import TokenBudgetSampler, load_examples  # noqa: E402
from songbloom.training.japanese_rows import untrained_japanese_symbols  # noqa: E402
from songbloom.training.loss import compute_loss  # noqa: E402
from songbloom.training.modes import (  # noqa: E402
    LYRIC_TABLE,
    TrainingMode,
    changed_parameters,
    parameter_groups,
    prepare,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sbtrain")
    return write_config(d / "tiny.yaml"), write_cuts(d)


def train_args(config, cuts, exp, *extra):
    return ["--config", str(config), "--cuts", str(cuts), "--dev-manifest", str(cuts), "--exp-dir", str(exp),
            "--device", "cpu", "--tensorboard", "false", "--max-tokens", "400", "--log-interval", "10", *extra]


def test_training_lowers_the_dev_loss_and_leaves_a_loadable_model(data, tmp_path):
    config, cuts = data
    exp = tmp_path / "exp"
    assert train.main(train_args(config, cuts, exp, "--num-iters", "60", "--warmup", "5", "--lr", "3e-3",
                                 "--valid-interval", "60", "--save-every-n", "30")) == 0
    # the untrained model (same seed, random init) against the trained one, teacher-forced on the songs
    cfg = load_config(config)
    torch.manual_seed(0)
    untrained = SongBloom(cfg, with_vae=False)
    m = cfg.model
    examples = load_examples(CutSet.from_file(cuts), m.vocab, m.block_size, 250, m.max_sentence_per_structure,
                             m.num_pitch)
    before = score_dev.score(untrained, examples, 400, torch.device("cpu"), 0.1)
    assert score_dev.main(["--config", str(exp / "songbloom.yaml"), "--cuts", str(cuts), "--output",
                           str(exp / "dev.json")]) == 0
    after = json.loads((exp / "dev.json").read_text())
    assert after["ce"] < 0.8 * before["ce"] and after["sketch_accuracy"] > before["sketch_accuracy"] + 0.1
    assert after["flow_loss"] < before["flow_loss"]
    # the averaged model is a valid release file too
    assert average.main(["--exp-dir", str(exp), "--avg", "2"]) == 0
    avg = load_model(exp / "songbloom.yaml", exp / "model-avg2.pt")
    last = load_model(exp / "songbloom.yaml")
    assert any(not torch.equal(a, b) for a, b in zip(avg.model.state_dict().values(), last.model.state_dict().values()))


def one_step(model, cfg, cuts, lr=1e-2):
    m = cfg.model
    examples = load_examples(CutSet.from_file(cuts), m.vocab, m.block_size, 250, m.max_sentence_per_structure,
                             m.num_pitch)
    batch = TokenBudgetSampler(examples, 10_000, m.block_size, m.prefix_len + 1, m.eos_id).batch()
    opt = torch.optim.AdamW(parameter_groups(model, lr, 0.1))
    for _ in range(2):
        loss, _ = compute_loss(model, batch, True, config=cfg, device=torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()


def rows_changed(before, after):
    return sorted(int(i) for i in (before != after).any(dim=1).nonzero())


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_each_mode_updates_exactly_what_it_claims(data, mode):
    config, cuts = data
    cfg = load_config(config)
    torch.manual_seed(0)
    core = SongBloom(cfg, with_vae=False).model
    vocab = cfg.model.vocab
    japanese = sorted(vocab.id(s) for s in untrained_japanese_symbols(vocab))
    model = prepare(core, TrainingMode(mode, "japanese", init_japanese_rows=True), vocab)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one_step(model, cfg, cuts)
    changed = set(changed_parameters(before, model))
    table_key = next(k for k in before if k.endswith(LYRIC_TABLE + ".weight"))
    if mode == "lora":
        assert changed and all("lora_" in k or k == table_key for k in changed), sorted(changed)[:5]
        assert any(".q_proj.lora_B" in k for k in changed) and any(".to_qkv.lora_B" in k for k in changed)
        assert not any(".k_proj." in k for k in changed)
    else:
        frozen = set(before) - changed
        # everything trains except the lyric rows outside the Japanese set, and fixed buffers
        assert not any("lora_" in k for k in before)
        assert all(not v.is_floating_point() or "beta" in k or "blank_emb" in k or k == table_key
                   or before[k].numel() == 0 for k, v in before.items() if k in frozen), sorted(frozen)[:5]
    assert table_key in changed
    rows = rows_changed(before[table_key], model.state_dict()[table_key])
    assert rows and set(rows) <= set(japanese), (rows, japanese)


def test_init_japanese_rows_uses_the_donors(data):
    config, _ = data
    cfg = load_config(config)
    torch.manual_seed(0)
    core = SongBloom(cfg, with_vae=False).model
    vocab = cfg.model.vocab
    table = dict(core.named_modules())[LYRIC_TABLE].weight
    old = table.detach().clone()
    prepare(core, TrainingMode("full", "all", init_japanese_rows=True), vocab)
    ky = vocab.id("ky")
    expected = old[[vocab.id("k"), vocab.id("K"), vocab.id("Y")]].mean(0)
    assert torch.allclose(table[ky], expected)
    assert torch.equal(table[vocab.id("k")], old[vocab.id("k")])  # donors themselves untouched


def test_lora_run_merges_into_an_equal_model(data, tmp_path):
    config, cuts = data
    base = tmp_path / "base"
    assert train.main(train_args(config, cuts, base, "--num-iters", "2", "--warmup", "0", "--save-every-n", "2",
                                 "--valid-interval", "0")) == 0
    exp = tmp_path / "lora"
    assert train.main(train_args(config, cuts, exp, "--checkpoint", str(base / "model.pt"), "--mode", "lora",
                                 "--num-iters", "6", "--warmup", "0", "--lr", "1e-2", "--lora-rank", "4",
                                 "--save-every-n", "3", "--valid-interval", "0")) == 0
    adapter = torch.load(exp / "adapter.pt", weights_only=True)
    assert adapter["config"]["rank"] == 4 and all("base_model" not in k for k in adapter["adapter"])
    out = tmp_path / "merged.pt"
    assert merge_lora.main(["--config", str(base / "songbloom.yaml"), "--checkpoint", str(base / "model.pt"),
                            "--adapter", str(exp / "adapter.pt"), "--output", str(out)]) == 0
    merged = load_model(base / "songbloom.yaml", out)
    released = load_model(exp / "songbloom.yaml")  # the run's own merged model.pt
    base_model = load_model(base / "songbloom.yaml")
    for (k, a), b in zip(merged.model.state_dict().items(), released.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert any(not torch.equal(a, c) for a, c in zip(merged.model.state_dict().values(),
                                                     base_model.model.state_dict().values()))
    # the adapted model and the merged one give the same training forward
    cfg = load_config(config)
    m = cfg.model
    examples = load_examples(CutSet.from_file(cuts), m.vocab, m.block_size, 250, m.max_sentence_per_structure,
                             m.num_pitch)
    a = score_dev.score(merged, examples, 400, torch.device("cpu"), 0.1)
    b = score_dev.score(released, examples, 400, torch.device("cpu"), 0.1)
    assert abs(a["ce"] - b["ce"]) < 1e-5 and abs(a["flow_loss"] - b["flow_loss"]) < 1e-5
    # averaging a LoRA run needs its base and merges the averaged adapters
    assert average.main(["--exp-dir", str(exp), "--avg", "2", "--base", str(base / "model.pt")]) == 0
    assert load_model(exp / "songbloom.yaml", exp / "model-avg2.pt") is not None


def test_bad_training_input_is_one_line(data, tmp_path):
    config, cuts = data
    from shirabe.cli import InputError

    with pytest.raises(InputError, match="--warmup 200 must be below --num-iters 10"):
        train.main(train_args(config, cuts, tmp_path / "e", "--num-iters", "10"))
    small = write_config(tmp_path / "small.yaml", num_pitch=8)
    with pytest.raises(InputError, match="sketch ids must lie in 0..7"):
        train.main(train_args(small, cuts, tmp_path / "e2", "--num-iters", "10", "--warmup", "1"))
    wide = write_config(tmp_path / "wide.yaml", latent_dim=16)
    with pytest.raises(InputError, match="latents have \\[8\\] channels"):
        train.main(train_args(wide, cuts, tmp_path / "e3", "--num-iters", "10", "--warmup", "1"))


def test_an_adapter_on_every_linear_layer_loads_back(data, tmp_path):
    from songbloom.inference import apply_adapter
    from songbloom.training.release import adapter_state

    config, cuts = data
    cfg = load_config(config)
    torch.manual_seed(0)
    song = SongBloom(cfg, with_vae=False)
    base = {k: v.clone() for k, v in song.model.state_dict().items()}
    mode = TrainingMode("lora", "japanese", lora_rank=2, lora_train_all=True)
    wrapped = prepare(song.model, mode, cfg.model.vocab)
    one_step(wrapped, cfg, cuts)
    state = adapter_state(wrapped, {"rank": 2, "alpha": 32.0, "dropout": 0.0, "lyric_rows": "japanese"})
    assert any("block_conv" in t for t in state["config"]["targets"])  # not only the default patterns
    torch.save(state, tmp_path / "adapter.pt")
    fresh = SongBloom(cfg, with_vae=False)
    fresh.model.load_state_dict(base)
    merged = apply_adapter(fresh, tmp_path / "adapter.pt").model
    expected = wrapped.merge_and_unload().state_dict()
    for k, v in merged.state_dict().items():
        assert torch.allclose(v, expected[k], atol=1e-6), k


def test_lora_under_ddp_with_two_processes(data, tmp_path):
    config, cuts = data
    exp = tmp_path / "ddp"
    assert train.main(train_args(config, cuts, exp, "--mode", "lora", "--num-iters", "2", "--warmup", "0",
                                 "--save-every-n", "2", "--valid-interval", "0", "--world-size", "2")) == 0
    adapter = torch.load(exp / "adapter.pt", weights_only=True)["adapter"]
    assert any(".lora_B." in k for k in adapter) and load_model(exp / "songbloom.yaml") is not None
