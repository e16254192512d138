"""Vocos: parity with the upstream fixture, full-size layout, strict and safe loading."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from shirabe.cli import InputError
from shirabe.vocoder import VOCOS_MEL_24KHZ_CONFIG, build_vocos, load_vocoder, load_vocos
from shirabe.vocoder.griffin_lim import GriffinLim

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VOCOS_TINY = FIXTURES / "vocos_tiny"

TOL = 1e-4  # fixture README


def test_decode_matches_fixture_audio(tiny_vocos, vocos_cases):
    audio = tiny_vocos.decode(torch.from_numpy(vocos_cases["mel"]))
    assert audio.shape == vocos_cases["audio"].shape == (1, 94 * 256)
    assert np.abs(audio.numpy() - vocos_cases["audio"]).max() <= TOL


def test_encode_matches_fixture_mel(tiny_vocos, vocos_cases):
    mel = tiny_vocos.encode(torch.from_numpy(vocos_cases["wav"])[None])
    assert mel.shape == vocos_cases["mel"].shape
    assert np.abs(mel.numpy() - vocos_cases["mel"]).max() <= TOL
    assert tiny_vocos(torch.from_numpy(vocos_cases["wav"])[None]).shape == (1, 94 * 256)


def test_loaded_model_is_in_eval_mode(tiny_vocos):
    assert not tiny_vocos.training
    assert tiny_vocos.sample_rate == 24000 and tiny_vocos.hop_length == 256 and tiny_vocos.n_mels == 100


def test_full_config_builds_the_released_layout():
    model = build_vocos(VOCOS_MEL_24KHZ_CONFIG)
    lines = (FIXTURES / "vocos_full_keys.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["key", "shape"]
    expected = [(k, tuple(int(d) for d in s.split("x"))) for k, s in (ln.split("\t") for ln in lines[1:])]
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert got == expected
    assert sum(p.numel() for p in model.parameters()) == 13_531_650  # buffers not counted
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())


def _tiny_state():
    return torch.load(VOCOS_TINY / "pytorch_model.bin", weights_only=True)


def test_strict_loading_names_missing_unexpected_and_misshaped_keys(tmp_path):
    cfg = VOCOS_TINY / "config.yaml"
    state = _tiny_state()
    del state["backbone.norm.bias"]
    torch.save(state, tmp_path / "missing.bin")
    with pytest.raises(InputError, match=r"missing keys: backbone\.norm\.bias"):
        load_vocos(cfg, tmp_path / "missing.bin")

    state = _tiny_state()
    state["backbone.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.bin")
    with pytest.raises(InputError, match=r"unexpected keys: backbone\.extra\.weight"):
        load_vocos(cfg, tmp_path / "extra.bin")

    state = _tiny_state()
    state["head.out.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "shape.bin")
    with pytest.raises(InputError, match=r"shape mismatch: head\.out\.bias \(1000,\)") as e:
        load_vocos(cfg, tmp_path / "shape.bin")
    assert "\n" not in str(e.value) and "shape.bin" in str(e.value)

    # A config with another width does not accept the tiny weights.
    cfg = yaml.safe_load((VOCOS_TINY / "config.yaml").read_text())
    cfg["backbone"]["init_args"]["intermediate_dim"] = 128
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match=r"shape mismatch: backbone\.convnext\.0\.pwconv1\.weight"):
        load_vocos(tmp_path / "wide.yaml", VOCOS_TINY / "pytorch_model.bin")


class _Meta:  # stands for any Python object that only pickle can restore
    def __init__(self, note):
        self.note = note


def test_pickle_needing_file_refused_unless_trusted(tmp_path, tiny_vocos, vocos_cases):
    path = tmp_path / "pytorch_model.bin"
    torch.save({**_tiny_state(), "meta": _Meta("x")}, path)
    with pytest.raises(InputError) as e:
        load_vocos(VOCOS_TINY / "config.yaml", path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "pickle" in msg
    model = load_vocos(VOCOS_TINY / "config.yaml", path, trust=True)
    mel = torch.from_numpy(vocos_cases["mel"])
    assert torch.equal(model.decode(mel), tiny_vocos.decode(mel))


def test_corrupt_or_missing_files_give_one_line_errors(tmp_path):
    bad = tmp_path / "pytorch_model.bin"
    bad.write_bytes(b"\x00not a torch file" * 10)
    for weights in (bad, tmp_path / "absent.bin"):
        with pytest.raises(InputError) as e:
            load_vocos(VOCOS_TINY / "config.yaml", weights)
        assert "\n" not in str(e.value) and str(weights) in str(e.value)
    (tmp_path / "bad.yaml").write_text("backbone: [unclosed")
    with pytest.raises(InputError, match="bad.yaml"):
        load_vocos(tmp_path / "bad.yaml", VOCOS_TINY / "pytorch_model.bin")
    cfg = yaml.safe_load((VOCOS_TINY / "config.yaml").read_text())
    cfg["head"]["class_path"] = "vocos.heads.IMDCTSymExpHead"
    with pytest.raises(InputError, match=r"head\.class_path"):
        build_vocos(cfg)
    cfg = yaml.safe_load((VOCOS_TINY / "config.yaml").read_text())
    cfg["backbone"]["init_args"]["adanorm_num_embeddings"] = 4
    with pytest.raises(InputError, match="adanorm"):
        build_vocos(cfg)


def test_load_vocoder_picks_vocos_or_warns_and_falls_back(tmp_path, caplog):
    assert load_vocoder(VOCOS_TINY).__class__.__name__ == "Vocos"
    with caplog.at_level("WARNING"):
        vocoder = load_vocoder(None)
    assert isinstance(vocoder, GriffinLim) and "Griffin-Lim" in caplog.text
    with pytest.raises(InputError, match="no such vocoder directory"):
        load_vocoder(tmp_path / "nowhere")


def test_pickle_module_is_really_needed(tmp_path):
    # Guard for the test above: weights_only loading must reject the object.
    path = tmp_path / "x.bin"
    torch.save({"meta": _Meta("x")}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
