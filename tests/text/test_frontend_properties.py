"""Property tests of the Japanese frontend on arbitrary Unicode text.

Whatever the text, the frontend (and the two places that expose it: ZipVoice's
``japanese`` tokenizer and ``shirabe.bin.g2p``) either returns tokens of the
scheme's table or raises :class:`~shirabe.cli.InputError` with a one-line
message; never another exception, never a slow path (hypothesis ``deadline``).
"""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shirabe.cli import InputError
from shirabe.text import SCHEMES, JapaneseFrontend
from shirabe.text.tokens import scheme_table

PROPERTY_SETTINGS = settings(max_examples=100, deadline=timedelta(seconds=5), database=None,
                             suppress_health_check=[HealthCheck.too_slow])

# Text a Japanese corpus holds, and the characters the normaliser has to deal with:
# ruby braces, ASCII/full-width punctuation, digits, controls, joiners, emoji, combining marks.
JAPANESE = list("あいうえおかがきくけこさしすせそたちつってとなにのはばぱまやゃゅょらりるれわをんー"
                "アイウエオカキクケコヴァィゥェォッャュョン漢字日本語今明東京何円月")
AWKWARD = list("{}|、。！？「」『』…〜・,.!?\"'()[] \t\n\r\x00\x7f\u200d\ufe0f\u0301\u3099\ufeff"
               "０１２３ＡＢＣａｂ①½Ⅷ㌔℃°😀🎉👍🏽")
texts = st.one_of(
    st.text(max_size=40),  # any code point (no lone surrogates)
    st.text(st.sampled_from(JAPANESE + AWKWARD), max_size=40),
    st.text(st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF), max_size=30),  # CJK and kana blocks
    st.tuples(st.text(st.sampled_from(JAPANESE + AWKWARD), max_size=6),
              st.text(st.sampled_from(JAPANESE + AWKWARD), max_size=6)).map(lambda p: f"前{{{p[0]}|{p[1]}}}後"),
)
# inputs that end in the frontend's own errors (malformed ruby, nothing to pronounce): InputErrors too
KNOWN = ["", "！！", "{|かな}", "{漢字|kanji}", "{漢字|}", "😀"]


@pytest.fixture(scope="module")
def frontends():
    return {s: JapaneseFrontend(s, quiet=True) for s in SCHEMES}


@pytest.fixture(scope="module")
def tables(frontends):
    return {s: frozenset(scheme_table(f.scheme).token2id) for s, f in frontends.items()}


def assert_one_line(error: InputError) -> None:
    message = str(error)
    assert message.strip() and "\n" not in message and "\r" not in message, repr(message)


@PROPERTY_SETTINGS
@given(text=texts, scheme=st.sampled_from(sorted(SCHEMES)))
@example(text="{漢字|kanji}", scheme="prosody")
@example(text="{|かな}", scheme="kana")
@example(text="", scheme="hl")
def test_frontend_gives_table_tokens_or_one_line_input_error(frontends, tables, text, scheme):
    try:
        tokens = frontends[scheme](text)
    except InputError as e:
        assert_one_line(e)
        return
    assert isinstance(tokens, list) and tokens
    assert all(isinstance(t, str) for t in tokens)
    assert set(tokens) <= tables[scheme], sorted(set(tokens) - tables[scheme])


@pytest.mark.parametrize("text", KNOWN)
def test_known_awkward_inputs_are_input_errors(frontends, text):
    with pytest.raises(InputError) as info:
        frontends["prosody"](text)
    assert_one_line(info.value)


@pytest.fixture(scope="module")
def zipvoice_tokenizer():
    from zipvoice.tokenizer.japanese import JapaneseTokenizer

    return JapaneseTokenizer(scheme="prosody")


@PROPERTY_SETTINGS
@given(text=texts)
def test_zipvoice_japanese_tokenizer_gives_ids_or_one_line_input_error(zipvoice_tokenizer, text):
    tok = zipvoice_tokenizer
    try:
        tokens = tok.texts_to_tokens([text])
    except InputError as e:
        assert_one_line(e)
        return
    ids = tok.tokens_to_token_ids(tokens)
    assert len(ids) == 1 and len(ids[0]) == len(tokens[0]) > 0
    assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids[0])
    assert [tok.table.id2token[i] for i in ids[0]] == tokens[0]


@pytest.fixture(scope="module")
def quiet_root_logger():
    """g2p's main sets up logging on every call; give the root logger back afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


@PROPERTY_SETTINGS
@given(text=texts.filter(lambda t: "\n" not in t and "\r" not in t), scheme=st.sampled_from(sorted(SCHEMES)))
@example(text="-x", scheme="prosody")  # reads like an option, yet is TEXT after "--"
def test_g2p_binary_prints_one_line_of_tokens_or_one_line_error(quiet_root_logger, tables, text, scheme):
    from shirabe.bin.g2p import main

    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            status = main(["--scheme", scheme, "--", text])
    except InputError as e:
        assert_one_line(e)
        assert out.getvalue() == ""  # nothing is printed on an error
        return
    assert status == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert set(lines[0].split(" ")) <= tables[scheme]
