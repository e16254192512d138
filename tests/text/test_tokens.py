"""Token tables, scheme inventories, the ZipVoice tokenizer, the IPA map and batch preparation."""

import itertools
from collections import Counter

import pytest

from shirabe.text import SCHEMES, JapaneseFrontend, TokenTable, UnknownTokenError, get_scheme
from shirabe.text.batch import tokenize_texts
from shirabe.text.ipa import init_source_ids, ipa_map, ipa_tokens
from shirabe.text.phonemes import PHONEMES
from shirabe.text.schemes import UnknownSchemeError
from shirabe.text.tokens import TokenTableError, extend_table, scheme_table

HEADS = ["今日は", "駅前の本屋で", "先生が", "3月21日に", "1,500円の", "NHKの記者が", "猫と", "東京タワーで",
         "ヴァイオリンの", "フュージョンを", "ティーカップに", "デュエットの", "ウィスキーを", "ツァイトが", "クヮの"]
TAILS = ["散歩しましたか？", "箸で食べた。", "雨が降っています、たぶん。", "「はい」と言った！", "ちょっと待って…",
         "新聞を読んだ", "好きですか?", "切手を貼ってください。", "イェーイと叫んだ", "グァバを食べた。",
         "AIと話した", "コーヒーを飲みましょう〜", "テュービンゲンへ行く", "ファイトでしたね", "ジェットに乗る"]
SENTENCES = ["".join(p) for p in itertools.product(HEADS, TAILS)]  # 225 varied sentences


@pytest.fixture(scope="module")
def utterances():
    fe = JapaneseFrontend()
    return [fe.utterance(s) for s in SENTENCES]


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("lowercase", [False, True])
def test_every_emitted_token_is_in_the_table(utterances, scheme, lowercase):
    sch = get_scheme(scheme, lowercase_devoiced=lowercase)
    table = scheme_table(sch)
    unknown = Counter()
    for utt in utterances:
        table.ids(sch(utt), unknown)
    assert not unknown


def test_fresh_table_layout():
    table = scheme_table(get_scheme("prosody"))
    assert table.pad_id == 0
    assert list(table.token2id)[:7] == ["_", "^", "$", "?", "#", "[", "]"]
    assert set(PHONEMES) <= set(table.token2id)
    assert "pau" not in table and "sil" not in table
    hl = scheme_table(get_scheme("hl"))
    assert {"[H]", "[L]", "|", "[Q]", "_"} <= set(hl.token2id) and "^" not in hl
    lower = scheme_table(get_scheme("phone", lowercase_devoiced=True))
    assert "U" not in lower and "u" in lower


def emilia_like_table(path):
    """A 360-token table shaped like the released Emilia one: `_` 0, `^` 1, `$` 2, `" "` 3, ..."""
    import piper_phonemize

    espeak = sorted(piper_phonemize.get_espeak_map().items(), key=lambda kv: kv[1][0])
    tokens = [t for t, _ in espeak]
    tokens += [f"py{i}" for i in range(360 - len(tokens))]  # stand-ins for the pinyin tokens
    path.write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens)), encoding="utf-8")
    return tokens


def test_extend_keeps_existing_ids_and_appends(tmp_path):
    src = tmp_path / "emilia.txt"
    tokens = emilia_like_table(src)
    base = TokenTable.read(src)
    assert len(base) == 360 and base.token2id[" "] == 3 and base.pad_id == 0
    ext = extend_table(base, get_scheme("prosody"))
    for i, t in enumerate(tokens):
        assert ext.token2id[t] == i
    added = [t for t in ext.token2id if t not in base]
    assert [ext.token2id[t] for t in added] == list(range(360, 360 + len(added)))
    assert added == ["[", "]", "A", "E", "I", "N", "O", "U", "by", "ch", "cl", "dy", "fy", "gw", "gy", "hy",
                     "kw", "ky", "my", "ny", "py", "ry", "sh", "ts", "ty"]
    out = tmp_path / "ext.txt"
    ext.write(out)
    assert TokenTable.read(out).token2id == ext.token2id
    assert out.read_text(encoding="utf-8").splitlines()[3] == " \t3"


def test_extend_zipvoice_ja_table_adds_only_what_it_lacks(tmp_path):
    """ZipVoice-ja's tokens_japanese_extended.txt: Emilia's 360, then 25 OpenJTalk
    phonemes (360-384) and [H] [L] | [Q] (385-388); the hl scheme adds only fy."""
    src = tmp_path / "ja.txt"
    tokens = emilia_like_table(src)
    ja = ["A", "E", "I", "N", "O", "U", "by", "ch", "cl", "dy", "dz", "gw", "gy", "hy", "kw", "ky", "my", "ny",
          "pau", "py", "ry", "sh", "sil", "ts", "ty", "[H]", "[L]", "|", "[Q]"]
    src.write_text("".join(f"{t}\t{i}\n" for i, t in enumerate(tokens + ja)), encoding="utf-8")
    base = TokenTable.read(src)
    assert len(base) == 389 and base.token2id["[H]"] == 385 and base.token2id["[Q]"] == 388
    ext = extend_table(base, get_scheme("hl"))
    assert [t for t in ext.token2id if t not in base] == ["fy"]
    assert ext.token2id["fy"] == 389


def test_unknown_tokens_raise_or_are_counted():
    table = TokenTable.from_tokens(["a", "b"])
    assert table.ids(["a", "b", "_"]) == [1, 2, 0]
    with pytest.raises(UnknownTokenError) as err:
        table.ids(["a", "zz", "yy", "zz"])
    assert err.value.tokens == ["zz", "yy"]
    counts = Counter()
    assert table.ids(["a", "zz", "zz"], counts) == [1]
    assert counts == Counter({"zz": 2})


@pytest.mark.parametrize(
    "content",
    ["a\t0\na\t1\n", "a\t0\nb\t0\n", "a 0\n", "a\tx\n", ""],
)
def test_malformed_token_files(tmp_path, content):
    path = tmp_path / "t.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenTableError):
        TokenTable.read(path)


def test_unknown_scheme():
    with pytest.raises(UnknownSchemeError):
        get_scheme("romaji")
    with pytest.raises(UnknownSchemeError):
        JapaneseFrontend("romaji")


def test_zipvoice_tokenizer_interface(tmp_path):
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.tokenizer.japanese import JapaneseTokenizer

    tok = JapaneseTokenizer(scheme="hl")
    assert tok.pad_id == 0 and tok.vocab_size == len(get_scheme("hl").inventory())
    assert tok.texts_to_tokens(["箸が", "雨？"]) == [
        ["h", "a", "[H]", "sh", "i", "[L]", "g", "a", "[L]"],
        ["a", "[H]", "m", "e", "[L]", "[Q]"],
    ]
    ids = tok.texts_to_token_ids(["箸が"])
    assert ids == tok.tokens_to_token_ids(tok.texts_to_tokens(["箸が"]))
    assert [tok.table.id2token[i] for i in ids[0]] == ["h", "a", "[H]", "sh", "i", "[L]", "g", "a", "[L]"]
    # a table without the scheme's marks: the tokenizer raises instead of dropping
    phone_file = tmp_path / "phone.txt"
    scheme_table(get_scheme("phone")).write(phone_file)
    strict = get_tokenizer("japanese", phone_file, scheme="prosody")
    with pytest.raises(UnknownTokenError):
        strict.texts_to_token_ids(["箸が"])


def test_ipa_map_covers_every_phoneme_and_mark():
    table = ipa_map()
    import piper_phonemize

    espeak = piper_phonemize.get_espeak_map()
    for scheme in ("prosody", "hl", "phone"):
        for tok in get_scheme(scheme).inventory():
            assert tok in table, tok
            assert table[tok] and all(ipa in espeak for ipa in table[tok]), tok
    assert table["u"] == ("ɯ",) and table["N"] == ("ɴ",) and table["ch"] == ("t", "ɕ")
    assert ipa_tokens("キャ") == ("k", "ʲ", "a")
    assert ipa_tokens("ー") == ()
    assert init_source_ids(["sh", "ky"], {"ɕ": 55, "k": 23, "ʲ": 119}) == {"sh": [55], "ky": [23, 119]}


def test_batch_counts_failures_and_unknown_tokens():
    texts = ["箸が", "！！", "雨？", "", "橋が"]
    table = TokenTable.from_tokens(["h", "a", "sh", "i", "g", "m", "e"])  # no marks at all
    res = tokenize_texts(texts, "prosody", token_table=table, num_jobs=1, chunk_size=2)
    assert [i for i, _ in res.failures] == [1, 3]
    assert res.tokens[1] is None and res.tokens[3] is None
    assert res.tokens[0] == "^ h a ] sh i g a $".split()
    assert res.unknown == Counter({"^": 3, "$": 2, "?": 1, "]": 3, "[": 1})


@pytest.mark.slow
def test_batch_in_parallel_matches_serial():
    texts = SENTENCES[:40] + ["！！"]
    serial = tokenize_texts(texts, "hl", num_jobs=1, chunk_size=8)
    parallel = tokenize_texts(texts, "hl", num_jobs=2, chunk_size=8)
    assert parallel.tokens == serial.tokens
    assert parallel.failures == serial.failures == [(40, "nothing to pronounce")]
