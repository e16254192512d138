"""The v2-large config (upstream's schema, the released sizes) builds exactly the released key list."""

import copy
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from songgen_testlib import FULL_KEYS, LELM_FIXTURE  # noqa: E402

from songgeneration.models import build_lelm, config_from_dict  # noqa: E402
from songgeneration.models.loading import PREFIX  # noqa: E402

V2_LARGE_LM = {"lm_type": "Llama", "dim": 2048, "intermediate_size": 11008, "num_heads": 16, "num_layers": 36,
               "num_layers_sub": 12, "code_depth": 3, "code_size": 16384, "max_position_embeddings": 10000,
               "max_position_embeddings_sub": 10000, "rope_theta": 500000.0, "rope_theta_sub": 500000.0}


def v2_large_dict() -> dict:
    data = yaml.safe_load((LELM_FIXTURE / "config.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["version"] = "v2"
    data["lm"] = dict(V2_LARGE_LM)
    data["codebooks_pattern"]["delay"]["delays"] = [0, 250, 250]
    data.update(max_dur=270, min_dur=30, prompt_len=10, sample_rate=48000)
    conds = data["conditioners"]
    conds["description"]["QwTokenizer"]["max_len"] = 600
    conds["type_info"]["QwTextTokenizer"]["max_len"] = 100
    conds["prompt_audio"]["qt_embedding"]["max_len"] = 252
    return data


def expected_keys() -> dict[str, list[int]]:
    rows = [ln.split("\t") for ln in FULL_KEYS.read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    return {r[0]: [int(x) for x in r[1].split("x")] for r in rows}


def test_v2_large_builds_the_released_keys():
    config = config_from_dict(v2_large_dict(), "v2-large")
    model = build_lelm(config, "meta")
    got = {PREFIX + k: list(v.shape) for k, v in model.state_dict().items()}
    want = expected_keys()
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert {k: v for k, v in got.items() if want[k] != v} == {}
    assert list(got) == list(want)  # same order as the release lists them


@pytest.mark.parametrize("version, lyric_rows, desc_rows", [("v1", 151659, 151646), ("v2", 151659, 151652)])
def test_text_table_rows_follow_the_version(version, lyric_rows, desc_rows):
    data = v2_large_dict()
    data["version"] = version
    data["lm"].update(dim=8, intermediate_size=16, num_heads=2, num_layers=1, num_layers_sub=1)
    model = build_lelm(config_from_dict(data, "cfg"), "meta")
    assert model.condition_provider.lyric.output_proj.num_embeddings == lyric_rows
    assert model.condition_provider.description.output_proj.num_embeddings == desc_rows
