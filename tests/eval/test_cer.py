"""Character error rate: normalisation, Levenshtein distance and corpus CER on hand-worked cases."""

import math

import pytest

from shirabe.eval.cer import cer, corpus_cer, edit_distance, normalize_for_cer


def test_normalisation_drops_punctuation_space_and_width():
    assert normalize_for_cer("「今日は、晴れ。」") == "今日は晴れ"
    assert normalize_for_cer("ＡＢＣ　１２３！") == "abc123"
    assert normalize_for_cer("ｶﾀｶﾅ ー") == "カタカナー"  # half-width kana become full width; the long mark stays


@pytest.mark.parametrize(
    ("ref", "hyp", "distance"),
    [
        ("kitten", "sitting", 3),  # 2 substitutions + 1 insertion
        ("abc", "abc", 0),
        ("abc", "", 3),
        ("", "ab", 2),
        ("あいうえお", "あうえおか", 2),  # one deletion, one insertion
    ],
)
def test_edit_distance(ref, hyp, distance):
    assert edit_distance(ref, hyp) == distance


def test_cer_and_corpus_cer():
    rate, edits, n = cer("今日は晴れ。", "今日は雨")  # 晴れ -> 雨: one substitution, one deletion
    assert (edits, n) == (2, 5) and rate == pytest.approx(0.4)
    # corpus CER sums edits and lengths: (2 + 0) / (5 + 3), not the mean of 0.4 and 0
    assert corpus_cer([("今日は晴れ", "今日は雨"), ("ありがとう", "ありがとう")]) == pytest.approx(2 / 10)
    assert math.isnan(cer("。", "あ")[0])


def test_kana_mode_ignores_the_spelling():
    assert cer("今日は晴れ", "きょうははれ")[0] > 0.5
    assert cer("今日は晴れ", "きょうははれ", kana=True)[0] == pytest.approx(0.0)
