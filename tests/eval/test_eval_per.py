"""shirabe.eval.per and the PER means of shirabe.eval.suite on hand-built cases."""

import sys
from pathlib import Path

import numpy as np
import pytest

from shirabe.asr import UnknownPhoneError
from shirabe.cli import InputError
from shirabe.eval.per import PhoneJudge, corpus_per, per_fields, per_summary
from shirabe.eval.suite import markdown_table, summarize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asr"))
from recognizer_testlib import blank_recognizer  # noqa: E402


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    return PhoneJudge.load(blank_recognizer(tmp_path_factory.mktemp("blank")))


def test_a_recognizer_that_hears_nothing_scores_100(blank, tmp_path):
    ref = blank.text_reference("かさ", "probe")
    assert ref == ["k", "a", "s", "a"]
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    result = blank.score((tone, 16000), ref)
    assert result == {"per": 100.0, "errors": 4, "ref_phones": 4, "hyp": ""}
    assert per_fields(result, "per_gt") == {"per_gt": 100.0, "per_gt_errors": 4, "per_gt_ref_phones": 4,
                                            "per_gt_hyp": ""}
    assert blank.score((tone, 16000), []) is None  # no reference phones, no PER
    assert per_fields(None)["per"] is None


def test_phone_references_drop_silence(blank):
    assert blank.phone_reference(["sil", "k", "a", "pau", "N", "sil"], "x.tsv") == ["k", "a", "N"]


def test_unknown_phones_and_model_dir_are_one_line_errors(tmp_path):
    judge = PhoneJudge.load(blank_recognizer(tmp_path / "ka", phones=["a", "k"]))
    with pytest.raises(UnknownPhoneError) as e:
        judge.text_reference("さか", "list.tsv: test item 'u2'")
    assert str(e.value) == f"list.tsv: test item 'u2': phone(s) not in {tmp_path / 'ka' / 'phones.txt'}: 's'"
    with pytest.raises(InputError) as e:
        PhoneJudge.load(tmp_path / "nope")
    assert str(e.value) == f"--phone-model-dir {tmp_path / 'nope'}: no such model directory"


def test_means_are_corpus_rates():
    rows = [{"per": 25.0, "per_errors": 1, "per_ref_phones": 4},
            {"per": 50.0, "per_errors": 3, "per_ref_phones": 6},
            {"per": None, "per_errors": None, "per_ref_phones": None}]
    # (1 + 3) / (4 + 6), not the mean of 25 % and 50 %
    assert corpus_per(rows) == (40.0, 2)
    assert corpus_per([{"per_errors": None}]) is None
    means, counts = summarize([{**r, "per_gt": 0.0 if r["per"] is not None else None,
                                "per_gt_errors": 0 if r["per"] is not None else None,
                                "per_gt_ref_phones": r["per_ref_phones"]} for r in rows])
    assert means == {"per": 40.0, "per_gt": 0.0} and counts == {"per": 2, "per_gt": 2}
    table = markdown_table({"sys": {"num_utterances": 3, "mean": means}})
    assert table.splitlines()[0] == "| system | utterances | PER (%) | PER ground truth (%) |"
    assert table.splitlines()[2] == "| sys | 3 | 40.0 | 0.0 |"


def test_log_line():
    assert per_summary(23.44, 9.2) == "PER 23.4 % (ground truth 9.2 %)"
    assert per_summary(80.0, None, "source") == "PER 80.0 % (source n/a)"
