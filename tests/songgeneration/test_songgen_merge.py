"""merge_lora: base + adapter -> a full checkpoint folder that loads strictly and gives the adapted logits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import LELM_FIXTURE  # noqa: E402

from shirabe.cli import InputError  # noqa: E402
from shirabe.train.checkpoint import load_state_dict_file  # noqa: E402
from songgeneration.bin import merge_lora  # noqa: E402
from songgeneration.models import load_lelm  # noqa: E402
from songgeneration.train_config import Lora  # noqa: E402
from songgeneration.training.lora import load_adapted, save_adapter, wrap_lelm  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A train config whose output_dir/lora holds an adapter with non-zero B (as after training)."""
    root = tmp_path_factory.mktemp("songgen_merge")
    torch.manual_seed(0)
    model = wrap_lelm(load_lelm(LELM_FIXTURE), Lora(r=4, alpha=8.0, dropout=0.0, include_mlp=True))
    with torch.no_grad():
        for name, q in model.named_parameters():
            if "lora_B" in name:
                q.normal_(0.0, 0.5)
    save_adapter(model, root / "exp" / "lora")
    cfg = root / "train_config.yaml"
    cfg.write_text(yaml.safe_dump({"paths": {
        "base_model_path": str(LELM_FIXTURE), "audio_tokenizer_path": "unused.pt", "metadata_path": "m.jsonl",
        "prepared_data_dir": "prepared", "output_dir": "exp"}, "training": {"type": "lora"}}))
    return root, cfg


def case_logits(lm) -> torch.Tensor:
    cases = np.load(LELM_FIXTURE / "cases.npz")
    cond = lm.conditions_from_ids(torch.from_numpy(cases["tf_lyric_ids"]), torch.from_numpy(cases["tf_desc_ids"]),
                                  torch.from_numpy(cases["tf_prompt_tokens"]))
    with torch.no_grad():
        return lm.compute_predictions(torch.from_numpy(cases["tf_codes"]), cond).logits


def test_merged_folder_loads_strictly_and_matches_the_adapted_model(run):
    root, cfg = run
    out = root / "merged"
    assert merge_lora.main(["--config", str(cfg), "--output-dir", str(out), "--save-dtype", "float32"]) == 0
    assert (out / "config.yaml").read_bytes() == (LELM_FIXTURE / "config.yaml").read_bytes()
    merged = load_lelm(out)  # strict: same keys and shapes as the base
    adapted = load_adapted(load_lelm(LELM_FIXTURE), root / "exp" / "lora")
    base = case_logits(load_lelm(LELM_FIXTURE))
    want, got = case_logits(adapted), case_logits(merged)
    assert float((want - base).abs().max()) > 1e-2  # the adapter changes the model
    assert float((want - got).abs().max()) < 1e-4


def test_default_is_float16_and_other_adapter_folder(run, tmp_path):
    root, cfg = run
    moved = tmp_path / "adapter"
    import shutil

    shutil.copytree(root / "exp" / "lora", moved)
    assert merge_lora.main(["--config", str(cfg), "--adapter", str(moved), "--output-dir", str(tmp_path / "m")]) == 0
    state = load_state_dict_file(tmp_path / "m" / "model.pt", map_location="cpu", key=None)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    with pytest.raises(InputError, match="no adapter_model.safetensors"):
        merge_lora.main(["--config", str(cfg), "--adapter", str(tmp_path), "--output-dir", str(tmp_path / "x")])
