"""Normalisation: width folding, punctuation, emoji removal, ruby parsing."""

import logging

import pytest

from shirabe.text import JapaneseFrontend, TextError, normalize, normalize_text
from shirabe.text.normalize import Segment, remove_unsupported


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("はい,そうです.", "はい、そうです。"),
        ("はい、そうです。", "はい、そうです。"),
        ("本当!?", "本当！？"),
        ("本当！？", "本当！？"),
        ("1,500円と3.14", "1,500円と3.14"),  # separators inside numbers stay
        ("えっと...そう・・・だね～", "えっと…そう…だね〜"),
        ("“はい”と(彼)が『言った』", "「はい」と「彼」が「言った」"),
        ('"はい"と言った', "「はい」と言った"),
        ("！！はい", "はい"),  # punctuation at the start is dropped
        ("　全角　スペース　", "全角 スペース"),
        ("25°Cで90°", "25℃で90度"),
        ("Mr.Smith", "Mr.Smith"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_emoji_removed_and_counted(caplog):
    with caplog.at_level(logging.DEBUG, logger="shirabe.text.normalize"):
        assert normalize_text("今日は晴れ😀🎉です👍🏽！") == "今日は晴れです！"
    messages = [r.getMessage() for r in caplog.records]
    assert any("removed 3 emoji/unsupported symbol(s)" in m for m in messages), messages


def test_emoji_sequences_count_visible_symbols():
    # family emoji: three people joined by ZWJ; keycap 1: digit + VS16 + combining keycap
    assert remove_unsupported("👨\u200d👩\u200d👧家族") == ("家族", 3)
    assert normalize_text("1\ufe0f\u20e3番") == "1番"
    assert remove_unsupported("ふつうの文です。") == ("ふつうの文です。", 0)


def test_symbols_openjtalk_reads_are_kept():
    assert normalize_text("〒100 ♂") == "〒100 ♂"
    assert normalize_text("100%") == "100%"


def test_numbers_and_latin_are_read_not_dropped():
    g2p = JapaneseFrontend("phone")
    assert g2p("5kg") == "g o k i r o g u r a m u".split()
    assert g2p("2024年") == "n i s e N n i j u u y o n e N".split()
    assert g2p("ABC") == "e i b i i sh i i".split()


def test_ruby_segments():
    assert normalize("{漢字|かんじ}を書く") == [Segment("漢字", "カンジ"), Segment("を書く")]
    assert normalize("｛今日｜きょう｝") == [Segment("今日", "キョウ")]  # full-width markup
    assert normalize_text("{漢字|カンジ}") == "{漢字|カンジ}"


@pytest.mark.parametrize("bad", ["{|かんじ}", "{漢字|kanji}", "{漢字|漢字}"])
def test_bad_ruby(bad):
    with pytest.raises(TextError):
        normalize(bad)
