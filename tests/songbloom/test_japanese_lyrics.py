"""Japanese lyrics → SongBloom symbols: separators, tags, Latin words, rewrites, no silent drops."""

import pytest

from shirabe.text.phonemes import PHONEMES
from songbloom.g2p import REWRITES, LyricError, load_vocab, lyrics_to_phonemes, tokenize


def test_phrases_sentences_and_tags():
    got = lyrics_to_phonemes("[intro] , [verse] さくら、さくら。\n[chorus] そら")
    assert got.text == "[intro] , [verse] s a k u r a , s a k u r a . [chorus] s o r a ."
    assert not got.unknown


def test_a_line_end_closes_a_sentence_and_separator_runs_keep_the_strongest():
    assert lyrics_to_phonemes("[verse] そら\nうみ").text == "[verse] s o r a . u m i ."
    assert lyrics_to_phonemes("[verse] そら、。、うみ！").text == "[verse] s o r a . u m i ."


def test_latin_words_are_read_by_the_japanese_frontend():
    assert lyrics_to_phonemes("[verse] Hello").text == "[verse] h a r o o ."


def test_ruby_sets_the_reading():
    assert lyrics_to_phonemes("[verse] {空|そら}").text == "[verse] s o r a ."


def test_devoiced_vowels_and_geminates_use_the_vocabulary_symbols():
    assert lyrics_to_phonemes("[verse] です").text == "[verse] d e s U ."
    assert lyrics_to_phonemes("[verse] きこえ").text == "[verse] k I k o e ."
    assert lyrics_to_phonemes("[verse] きって").text == "[verse] k i cl t e ."


def test_every_openjtalk_phoneme_maps_into_the_vocabulary():
    vocab = load_vocab()
    for p in PHONEMES:
        assert all(s in vocab for s in REWRITES.get(p, (p,))), p


def test_an_unknown_tag_is_an_error_naming_its_line():
    with pytest.raises(LyricError, match=r"line 2: .*'\[prechorus\]'"):
        lyrics_to_phonemes("[verse] そら\n[prechorus] うみ")
    got = lyrics_to_phonemes("[verse] そら\n[prechorus] うみ", allow_unknown=True)
    assert dict(got.unknown) == {"[prechorus]": 1}
    assert "[prechorus]" not in got.text


def test_the_symbol_string_tokenizes_without_unknowns():
    got = lyrics_to_phonemes("[verse] かえるのうたが、きこえてくるよ。\n[chorus] グワッ グワッ")
    tok = tokenize(got.text)
    assert not tok.unknown and len(tok.ids) == len(got.symbols)


def test_g2p_cli(tmp_path, capsys):
    from shirabe.cli import InputError
    from songbloom.bin import g2p

    (tmp_path / "songs.jsonl").write_text('{"idx": "a", "lyrics": "[verse] そら"}\n\n[chorus] うみ\n')
    assert g2p.main(["--input", str(tmp_path / "songs.jsonl")]) == 0
    assert capsys.readouterr().out == "[verse] s o r a .\n[chorus] u m i .\n"
    assert g2p.main(["[verse] そら", "--ids", "true"]) == 0
    vocab = load_vocab()
    assert capsys.readouterr().out.split() == [str(vocab.id(s)) for s in ["[verse]", "s", "o", "r", "a", "."]]
    with pytest.raises(InputError, match=r"songs.txt:2: .*'\[prechorus\]'"):
        (tmp_path / "songs.txt").write_text("[verse] そら\n[prechorus] うみ\n")
        g2p.main(["--input", str(tmp_path / "songs.txt")])
