"""acestep.bin.train_accompaniment: pairs from two latent caches, the loss of both modes (path point, control,
structure term), training that lowers the loss and leaves a bundle generation takes, --dry-run, exact resume
and one-line config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from acestep_testlib import make_tiny_checkpoint

from acestep.accompaniment.bundle import load_bundle
from acestep.accompaniment.controlnet import ControlEncoder
from acestep.accompaniment.trainer import AccompanimentTrainer
from acestep.accompaniment.training import (
    AccompanimentModel,
    LossSettings,
    compute_loss,
    fixed_batches,
    load_pairs,
    pair_batch,
)
from acestep.bin import train_accompaniment as cli
from acestep.models import load_transformer
from acestep.schedule import training_draw
from acestep.training.loss import batch_generator
from shirabe.cli import run_main

pytestmark = pytest.mark.usefixtures("single_torch_thread")
KEYS = ("song0", "song1", "song2")
LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["to_q", "to_k", "to_v", "to_out.0"]}
CONTROL = {"mode": "controlnet", "control_encoder_dim": 32, "control_encoder_depth": 1, "injection_layers": [0, 1]}


def _write(folder: Path, key: str, wav: np.ndarray, lyrics: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / f"{key}.wav", np.stack([wav, 0.8 * wav], axis=1).astype(np.float32), 48000)
    (folder / f"{key}_prompt.txt").write_text("pop, piano")
    if lyrics:
        (folder / f"{key}_lyrics.txt").write_text("[verse]\nhello world\n")


def make_pair_cache(root: Path) -> tuple[Path, Path]:
    """(checkpoint, cache): a tiny checkpoint and a pair cache with ``vocal/`` and ``target/`` (built once per
    folder): three 2 s pairs, a key with only a vocal (``solo``) and one whose target is longer (``long``)."""
    from acestep.bin import cache_latents

    ckpt, cache = root / "ckpt", root / "cache"
    if (root / "done").is_file():
        return ckpt, cache
    make_tiny_checkpoint(ckpt)
    rng = np.random.default_rng(0)
    t = np.arange(2 * 48000) / 48000
    for i, key in enumerate(KEYS):
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (1 + i) * t)
        _write(root / "data" / "vocal", key, envelope * 0.3 * np.sin(2 * np.pi * (300 + 50 * i) * t), i == 0)
        _write(root / "data" / "target", key,
               0.2 * np.sin(2 * np.pi * (110 + 20 * i) * t) + 0.05 * rng.standard_normal(t.shape), i == 0)
    _write(root / "data" / "vocal", "solo", 0.3 * np.sin(2 * np.pi * 400 * t), False)
    _write(root / "data" / "vocal", "long", 0.3 * np.sin(2 * np.pi * 500 * t), False)
    t5 = np.arange(5 * 48000) / 48000
    _write(root / "data" / "target", "long", 0.2 * np.sin(2 * np.pi * 150 * t5), False)
    for side in ("vocal", "target"):
        assert cache_latents.main(["--checkpoint-dir", str(ckpt), "--data-dir", str(root / "data" / side),
                                   "--output-dir", str(cache / side), "--device", "cpu", "--progress", "false"]) == 0
    (root / "done").write_text("")
    return ckpt, cache


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return make_pair_cache(tmp_path_factory.getbasetemp() / "accompaniment_pairs")


def write_config(path: Path, cache: Path, exp_name: str = "run", **fields) -> Path:
    accompaniment = fields.pop("accompaniment", {"mode": "image2image", "reference_strength": 0.5})
    data = {"lora": LORA, "accompaniment": accompaniment, "dataset_path": str(cache), "max_duration": 30.0,
            "learning_rate": 3e-3, "max_steps": 40, "warmup_steps": 2, "checkpoint_every_n_steps": 20,
            "ssl_coeff": 0.0, "ssl_depths": [1], "exp_name": exp_name, "logger_dir": str(path.parent / "exp"),
            **fields}
    path.write_text(json.dumps(data))
    return path


def run_args(config: Path, ckpt: Path, *extra) -> list[str]:
    return ["--config", str(config), "--checkpoint-dir", str(ckpt), "--device", "cpu", "--tensorboard", "false",
            "--log-interval", "10", *extra]


def test_pairs_are_matched_by_key(setup):
    _, cache = setup
    data = load_pairs(cache)
    assert [p.key for p in data.pairs] == list(KEYS)
    reasons = dict(data.skipped)
    assert set(reasons) == {"solo", "long"}
    assert "target" in reasons["solo"] and "latent frames" in reasons["long"]
    pair = data.pairs[1]
    batch = pair_batch([pair], [(0, 2, 10)])
    vocal = np.asarray(pair.vocal.cut.load_custom("latent"))[..., 2:12]
    target = np.asarray(pair.target.cut.load_custom("latent"))[..., 2:12]
    assert torch.equal(batch["vocal_latents"][0], torch.from_numpy(vocal))
    assert torch.equal(batch["latents"][0], torch.from_numpy(target))
    assert not torch.equal(batch["vocal_latents"], batch["latents"])


class Spy(torch.nn.Module):
    """Records the denoiser's inputs; predicts zero velocity (so x0_hat = x_t)."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x_t, batch, timestep, mask, vocal=None, control_keep=None):
        self.calls.append((x_t.clone(), timestep.clone(), vocal))
        return torch.zeros_like(x_t) + self.w


def test_image2image_trains_on_the_path_from_the_vocal_source(setup):
    _, cache = setup
    batch = fixed_batches(load_pairs(cache).pairs, batch_size=3)[0]
    spy = Spy()
    compute_loss(spy, batch, False, device=torch.device("cpu"), settings=LossSettings(reference_strength=0.25))
    x_t, timestep, vocal = spy.calls[0]
    generator = batch_generator(batch["ids"])  # validation draws: noise, then u
    noise = torch.randn(batch["latents"].shape, generator=generator)
    _, expected_t, sigma = training_draw(torch.randn(3, generator=generator))
    s = sigma[:, None, None, None]
    expected = s * (0.25 * batch["vocal_latents"] + 0.75 * noise) + (1 - s) * batch["latents"]
    torch.testing.assert_close(x_t, expected)
    assert torch.equal(timestep, expected_t) and vocal is None
    # controlnet: x_t from noise alone, the vocal goes to the control encoder
    spy = Spy()
    compute_loss(spy, batch, False, device=torch.device("cpu"), settings=LossSettings(mode="controlnet"))
    x_t, _, vocal = spy.calls[0]
    torch.testing.assert_close(x_t, s * noise + (1 - s) * batch["latents"])
    assert torch.equal(vocal, batch["vocal_latents"])


def test_structure_loss_enters_the_logged_loss(setup):
    ckpt, cache = setup
    batch = fixed_batches(load_pairs(cache).pairs, batch_size=3)[0]
    model = AccompanimentModel(load_transformer(ckpt / "ace_step_transformer")).eval()
    plain, m0 = compute_loss(model, batch, False, device=torch.device("cpu"), settings=LossSettings())
    weighted, m1 = compute_loss(model, batch, False, device=torch.device("cpu"),
                                settings=LossSettings(structure_loss_weight=2.0))
    assert "structure_loss" not in m0 and m1["structure_loss"] > 0
    assert float(weighted) > float(plain)
    torch.testing.assert_close(float(weighted) - float(plain), 2.0 * m1["structure_loss"] / 3, rtol=1e-5, atol=1e-7)
    assert m1["loss"] == pytest.approx(3 * float(weighted)) and m1["frames"] == 3


def validation_loss(model, cache) -> float:
    total = 0.0
    for batch in fixed_batches(load_pairs(cache).pairs):
        loss, _ = compute_loss(model, batch, False, device=torch.device("cpu"), settings=SETTINGS[model.mode])
        total += float(loss)
    return total


SETTINGS = {"image2image": LossSettings(), "controlnet": LossSettings(mode="controlnet")}


def model_from_bundle(ckpt, bundle=None):
    transformer = load_transformer(ckpt / "ace_step_transformer")
    control = None
    if bundle is not None:
        bundle.merge_lora(transformer)
        control = bundle.control_encoder
    model = AccompanimentModel(transformer, control).eval()
    model.mode = bundle.mode if bundle is not None else "image2image"
    return model


@pytest.mark.parametrize("mode", ["image2image", "controlnet"])
def test_training_lowers_the_loss_and_writes_bundles(setup, tmp_path, mode):
    ckpt, cache = setup
    accompaniment = CONTROL if mode == "controlnet" else {"mode": "image2image", "reference_strength": 0.5}
    config = write_config(tmp_path / "config.json", cache, accompaniment=accompaniment)
    exp = tmp_path / "exp" / "run"  # the config's logger_dir/exp_name
    assert cli.main(run_args(config, ckpt)) == 0
    assert (exp / "checkpoint-40.pt").is_file() and (exp / "checkpoints" / "step=20").is_dir()
    bundle = load_bundle(exp / "bundle", num_layers=2)
    assert bundle.mode == mode and bundle.lora_settings.rank == 4
    ckpt_state = torch.load(exp / "checkpoint-40.pt", weights_only=True)["model"]
    assert all(".lora_" in k or k.startswith("control_encoder.") for k in ckpt_state)  # trainable tensors only
    assert any(k.startswith("control_encoder.") for k in ckpt_state) == (mode == "controlnet")
    if mode == "controlnet":
        injected = bundle.control_encoder.injections["0"].weight
        assert float(injected.detach().abs().max()) > 0  # zero-initialised, then trained
        baseline = model_from_bundle(ckpt)
        baseline.control_encoder = ControlEncoder(64, [0, 1], dim=32, depth=1, heads=1)  # adds exact zeros
        baseline.mode = "controlnet"
    else:
        baseline = model_from_bundle(ckpt)
    before = validation_loss(baseline, cache)
    after = validation_loss(model_from_bundle(ckpt, bundle), cache)
    assert after < 0.85 * before, (before, after)
    # the final bundle is the one of the last checkpoint step
    last = load_bundle(exp / "checkpoints" / "step=40", num_layers=2)
    assert all(torch.equal(last.adapter[k][1], bundle.adapter[k][1]) for k in bundle.adapter)
    if mode == "controlnet":  # generation takes the bundle as it is
        from acestep.bin import generate_accompaniment

        vocal = cache.parent / "data" / "vocal" / "song0.wav"
        assert generate_accompaniment.main(["--checkpoint-dir", str(ckpt), "--lora-path", str(exp / "bundle"),
                                            "--vocal", str(vocal), "--prompt", "pop, piano", "--infer-step", "2",
                                            "--output-dir", str(tmp_path / "gen"), "--device", "cpu",
                                            "--seed", "1"]) == 0
        out, sr = sf.read(tmp_path / "gen" / "song0_accompaniment.wav")
        assert sr == 48000 and out.shape[0] == 2 * 48000


def test_dry_run_prints_the_plan_and_trains_nothing(setup, tmp_path, capsys):
    ckpt, cache = setup
    config = write_config(tmp_path / "config.json", cache, accompaniment=CONTROL, structure_loss_weight=0.5)
    assert cli.main(run_args(config, ckpt, "--dry-run", "true", "--num-iters", "7")) == 0
    out = capsys.readouterr().out
    assert "mode: controlnet" in out and "pairs: 3" in out
    assert "skipped solo" in out and "skipped long" in out
    # 16 adapted Linears (q, k, v, out of self- and cross-attention in 2 blocks), each 64 -> 64: 4 * (64 + 64)
    assert "8,192 trainable parameters" in out
    encoder = ControlEncoder(64, [0, 1], dim=32, depth=1, heads=1)
    assert f"{sum(q.numel() for q in encoder.parameters()):,} trainable parameters" in out
    assert "steps: 7" in out and "structure_loss_weight 0.5" in out and "nothing trained" in out
    assert not (tmp_path / "exp").exists()


def test_resume_is_exact(setup, tmp_path, monkeypatch):
    ckpt, cache = setup
    config = write_config(tmp_path / "config.json", cache, accompaniment=CONTROL, max_steps=8,
                          checkpoint_every_n_steps=4, batch_size=2, structure_loss_weight=0.5)
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert cli.main(run_args(config, ckpt, "--exp-dir", str(straight))) == 0

    original = AccompanimentTrainer.after_step

    def crash(self):
        original(self)
        if self.params.batch_idx_train == 6:
            raise RuntimeError("killed")

    monkeypatch.setattr(AccompanimentTrainer, "after_step", crash)
    with pytest.raises(RuntimeError, match="killed"):
        cli.main(run_args(config, ckpt, "--exp-dir", str(broken)))
    assert (broken / "checkpoint-4.pt").is_file() and not (broken / "bundle").exists()
    steps = []

    def record(self):
        steps.append(self.params.batch_idx_train)
        original(self)

    monkeypatch.setattr(AccompanimentTrainer, "after_step", record)
    assert cli.main(run_args(config, ckpt, "--exp-dir", str(broken))) == 0
    assert steps == [5, 6, 7, 8]  # resumed from checkpoint-4.pt
    a, b = load_bundle(straight / "bundle", num_layers=2), load_bundle(broken / "bundle", num_layers=2)
    assert all(torch.equal(a.adapter[k][i], b.adapter[k][i]) for k in a.adapter for i in (0, 1))
    sa, sb = a.control_encoder.state_dict(), b.control_encoder.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["injections.0.weight"], torch.zeros_like(sa["injections.0.weight"]))


@pytest.mark.parametrize("fields, expected", [
    ({"accompaniment": {**CONTROL, "injection_layers": [0, 5]}},
     "accompaniment.injection_layers: layer 5 does not exist in a 2-layer transformer"),
    ({"learning_rate": -1.0}, "learning_rate: Input should be greater than 0"),
])
def test_invalid_config_is_one_line_exit_2(setup, tmp_path, capsys, fields, expected):
    ckpt, cache = setup
    config = write_config(tmp_path / "config.json", cache, **fields)
    with pytest.raises(SystemExit) as exc:
        run_main(cli.main, run_args(config, ckpt))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and str(config) in err[0]


def test_missing_cache_side_is_one_line(setup, tmp_path, capsys):
    ckpt, cache = setup
    config = write_config(tmp_path / "config.json", tmp_path / "nowhere")
    with pytest.raises(SystemExit) as exc:
        run_main(cli.main, run_args(config, ckpt, "--dry-run", "true"))
    assert exc.value.code == 2 and "nowhere/vocal: no latent cache folder" in capsys.readouterr().err
