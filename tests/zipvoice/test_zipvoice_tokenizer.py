"""Tokenizers and token tables."""

import logging

import pytest
from zipvoice_testlib import ZIPVOICE_TINY

from shirabe.cli import InputError
from zipvoice.tokenizer import EmiliaTokenizer, get_tokenizer, read_token_table, vocab_info
from zipvoice.tokenizer.english import normalize_english, number_to_words, ordinal_to_words

TOKENS = ZIPVOICE_TINY / "tokens.txt"


def test_token_table():
    table = read_token_table(TOKENS)
    assert len(table) == 46 and table["_"] == 0 and table["pau"] == 43
    assert vocab_info(TOKENS) == (46, 0)


def test_token_table_keeps_space_token(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("_\t0\n \t1\na\t2\n", encoding="utf-8")
    assert read_token_table(path) == {"_": 0, " ": 1, "a": 2}


@pytest.mark.parametrize(
    "content,message",
    [
        ("_\t0\nab\n", r"tokens.txt:2: expected 'token<TAB>id'"),
        ("_\t0\na\tx\n", r"tokens.txt:2: token id 'x' is not an integer"),
        ("_\t0\na\t0\n", r"tokens.txt:2: id 0 used twice"),
        ("_\t0\na\t5\n", r"ids must lie in \[0, 2\)"),
        ("a\t0\n", "has no pad token"),
        ("", "token file is empty"),
    ],
)
def test_token_table_errors(tmp_path, content, message):
    path = tmp_path / "tokens.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_token_table(path)


def test_missing_token_table(tmp_path):
    with pytest.raises(InputError, match="no such token file"):
        get_tokenizer("simple", tmp_path / "none.txt")


def test_simple_tokenizer_warns_once_per_unknown_token(caplog):
    tok = get_tokenizer("simple", TOKENS)
    with caplog.at_level(logging.WARNING):
        ids = tok.texts_to_token_ids(["sakana xx.", "aiueo"])
    assert ids == [[7, 1, 6, 1, 9, 1, 45], [1, 2, 3, 4, 5]]
    assert tok.oov_counts == {"x": 2, " ": 1}
    assert sum("not in" in r.message for r in caplog.records) == 2


def test_espeak_tokenizer():
    tok = get_tokenizer("espeak", None, lang="en-us")
    tokens = tok.texts_to_tokens(["Hello world. How are you?"])[0]
    assert tokens[:4] == ["h", "ə", "l", "ˈ"] and tokens[-1] == "?"
    with pytest.raises(InputError, match="espeak cannot phonemize"):
        get_tokenizer("espeak", None, lang="xx-nope").texts_to_tokens(["hi"])


def test_emilia_segments_and_english():
    segments = EmiliaTokenizer._segments("Hello 世界, this is 2 tests. [laugh] ok")
    assert segments == [("en", "Hello "), ("zh", "世界, "), ("en", "this is 2 tests. "), ("tag", "[laugh]"),
                        ("en", " ok")]
    tokens = EmiliaTokenizer(None).texts_to_tokens(["Hi, 2 cats！[laugh]"])[0]
    assert tokens[-1] == "[laugh]" and "!" in tokens and "æ" in tokens


def test_emilia_chinese_pinyin():
    # 你好: third-tone sandhi makes ni3 hao3 -> ni2 hao3; initials carry a 0
    tokens = EmiliaTokenizer(None).texts_to_tokens(["你好<zhong1>"])[0]
    assert tokens == ["n0", "i2", "h0", "ao3", "zh0", "ong1"]


def test_english_normaliser():
    assert number_to_words(1234) == "one thousand two hundred thirty-four"
    assert ordinal_to_words(21) == "twenty-first" and ordinal_to_words(12) == "twelfth"
    assert normalize_english("Dr. Li paid $3.50 for 45% of 1,000.") == (
        "doctor Li paid three dollars and fifty cents for forty-five percent of one thousand."
    )


def test_get_tokenizer_names():
    with pytest.raises(InputError, match="unknown tokenizer 'klingon'"):
        get_tokenizer("klingon", TOKENS)


def test_japanese_tokenizer_through_factory():
    try:
        import zipvoice.tokenizer.japanese  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="japanese tokenizer is not available"):
            get_tokenizer("japanese", TOKENS)
    else:
        tok = get_tokenizer("japanese", TOKENS)
        assert all(tok.texts_to_token_ids(["こんにちは。"]))
