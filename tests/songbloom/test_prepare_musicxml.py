"""Song-corpus preparation, the parts without audio: MusicXML lead lyrics, phrase punctuation,
structure tags, Japanese cleaning, lyric strings and the prompt window.

The expected lyrics are written out by hand from the score in
``tests/songbloom/data/lead_and_harmony.musicxml`` (its comment lists every
note and rest in seconds).
"""

from __future__ import annotations

import logging
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from songbloom.data.japanese import clean_japanese, describe_removed, has_japanese
from songbloom.data.lead import LeadError, find_lead
from songbloom.data.lyrics import clean_sections, format_lyrics, parse_lyrics, structure_of
from songbloom.data.musicxml import ScoreError, read_score
from songbloom.data.phrases import (
    Syllable,
    boundary,
    build_sections,
    lyrics_from_score,
    settle_sections,
)
from songbloom.data.prompt import prompt_start
from songbloom.data.structure import tag_of_rehearsal, tag_of_words

DATA = Path(__file__).parent / "data"
SCORE = DATA / "lead_and_harmony.musicxml"
EXPECTED = "[verse] かえるのうた , が , きこえて . [chorus] ぐわ . ぐわ ."


def _lyrics(path, **kw) -> str:
    return format_lyrics(lyrics_from_score(read_score(path), **kw).sections)


def _variant(tmp_path, old: str, new: str, name="variant.musicxml") -> Path:
    text = SCORE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    "rest, section_end, mark",
    [(0.0, False, ""), (0.124, False, ""), (0.25, False, ","), (0.75, False, ","), (0.999, False, ","),
     (1.0, False, "."), (3.0, False, "."), (0.0, True, "."), (0.5, True, ".")],
)
def test_boundary_rule(rest, section_end, mark):
    assert boundary(rest, section_end) == mark


def test_boundary_thresholds_are_options():
    assert boundary(0.3, False, phrase_rest=0.4, sentence_rest=2.0) == ""
    assert boundary(1.5, False, phrase_rest=0.4, sentence_rest=2.0) == ","
    assert boundary(1.5, False, phrase_rest=0.1, sentence_rest=1.5) == "."


# ---------------------------------------------------------------- the hand-written score


def test_lead_lyrics_with_phrases_sections_tie_and_melisma():
    score = read_score(SCORE)
    assert score.end == pytest.approx(8.0)
    read = lyrics_from_score(score)
    assert read.lead == "P2 'Lead Vocal'"
    # 16th rest (0.125 s) joins; the tie holds た to 3.0 s, so the quarter rest is 0.5 s -> ',';
    # the melisma holds が to 4.0 s, so the two rests are 0.75 s -> ','; サビ starts [chorus]; two
    # quarter rests in a row make 1.0 s -> '.'
    assert format_lyrics(read.sections) == EXPECTED
    assert structure_of(read.sections) == [{"tag": "[verse]", "start": 0.0, "end": 6.0},
                                           {"tag": "[chorus]", "start": 6.0, "end": 8.0}]
    for scat in ("LA", "BA", "DA", "TU", "ツ", "カ"):  # soprano and vocal percussion lyrics
        assert scat not in format_lyrics(read.sections)


def test_tempo_from_a_metronome_in_half_notes(tmp_path):
    # half = 30 is a quarter at 60 BPM: every length doubles; the 16th rest (0.25 s) now splits a
    # phrase, the 1.0 s quarter rest after the tie ends a sentence
    path = _variant(tmp_path, '<beat-unit>quarter</beat-unit><per-minute>120</per-minute></metronome></direction-type>\n'
                    '        <sound tempo="120"/>',
                    "<beat-unit>half</beat-unit><per-minute>30</per-minute></metronome></direction-type>")
    score = read_score(path)
    assert score.end == pytest.approx(16.0)
    assert format_lyrics(lyrics_from_score(score).sections) == (
        "[verse] かえるの , うた . が . きこえて . [chorus] ぐわ . ぐわ ."
    )


def test_sound_tempo_wins_over_the_metronome(tmp_path):
    path = _variant(tmp_path, '<sound tempo="120"/>', '<sound tempo="60"/>')
    assert read_score(path).end == pytest.approx(16.0)


def test_no_tempo_mark_means_120(tmp_path):
    text = SCORE.read_text(encoding="utf-8")
    start = text.index('<direction placement="above">\n        <direction-type><metronome>')
    end = text.index("</direction>", start) + len("</direction>")
    path = tmp_path / "no_tempo.musicxml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    score = read_score(path)
    assert score.end == pytest.approx(8.0)
    assert format_lyrics(lyrics_from_score(score).sections) == EXPECTED


def test_a_score_without_marks_is_one_verse(tmp_path):
    path = _variant(tmp_path, "<rehearsal>Aメロ</rehearsal>", "<words>soft</words>")
    text = path.read_text(encoding="utf-8").replace("<rehearsal>サビ</rehearsal>", "<words>a tempo</words>")
    path.write_text(text, encoding="utf-8")
    # て (to 6.0 s) and ぐ (from 6.0 s) now run on inside one [verse]
    assert _lyrics(path) == "[verse] かえるのうた , が , きこえてぐわ . ぐわ ."


def test_section_words_directions(tmp_path):
    path = _variant(tmp_path, "<rehearsal>サビ</rehearsal>", "<words>Chorus 2</words>")
    assert _lyrics(path) == EXPECTED


def test_compressed_mxl(tmp_path):
    path = tmp_path / "song.mxl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container><rootfiles><rootfile full-path="score/song.musicxml"/>'
                   "</rootfiles></container>")
        z.writestr("score/song.musicxml", SCORE.read_bytes())
    assert _lyrics(path) == EXPECTED


def test_broken_xml_names_the_line(tmp_path):
    lines = SCORE.read_text(encoding="utf-8").splitlines()
    k = next(i for i, line in enumerate(lines) if "<text>る</text>" in line)
    lines[k] = lines[k].replace("</note>", "</nota>")
    path = tmp_path / "broken.musicxml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ScoreError, match=rf"^broken MusicXML: line {k + 1}, column \d+: mismatched tag"):
        read_score(path)


def test_unreadable_scores(tmp_path):
    (tmp_path / "not_a_score.musicxml").write_text("<html><body/></html>", encoding="utf-8")
    with pytest.raises(ScoreError, match="unreadable MusicXML: the root element is <html>"):
        read_score(tmp_path / "not_a_score.musicxml")
    (tmp_path / "bad.mxl").write_bytes(b"PK not really")
    with pytest.raises(ScoreError, match="unreadable MusicXML: not a .mxl"):
        read_score(tmp_path / "bad.mxl")
    with pytest.raises(ScoreError, match="missing MusicXML file"):
        read_score(tmp_path / "absent.musicxml")


def test_cleaning_scat_from_the_lead(tmp_path):
    path = _variant(tmp_path, "<text>が</text>", "<text>LA</text>")
    read = lyrics_from_score(read_score(path), clean=True)
    assert format_lyrics(read.sections) == "[verse] かえるのうた , きこえて . [chorus] ぐわ . ぐわ ."
    assert read.removed == Counter({"L": 1, "A": 1})
    # without cleaning the Latin syllable stays (the G2P reads it)
    assert "LA" in _lyrics(path)


# ---------------------------------------------------------------- the lead part


def _score(tmp_path, parts: list[tuple[str, list[str]]]) -> Path:
    """A one-bar score: (part name, lyrics of its quarter notes) per part."""
    heads = "".join(f'<score-part id="P{i}"><part-name>{name}</part-name></score-part>'
                    for i, (name, _) in enumerate(parts, 1))
    body = []
    for i, (_, lyrics) in enumerate(parts, 1):
        notes = "".join(
            "<note><pitch><step>C</step><octave>5</octave></pitch><duration>1</duration>"
            + (f"<lyric><text>{t}</text></lyric>" if t else "") + "</note>" for t in lyrics)
        body.append(f'<part id="P{i}"><measure number="1"><attributes><divisions>1</divisions></attributes>'
                    f"{notes}</measure></part>")
    path = tmp_path / "parts.musicxml"
    path.write_text(f'<score-partwise><part-list>{heads}</part-list>{"".join(body)}</score-partwise>',
                    encoding="utf-8")
    return path


def test_lead_by_name(tmp_path):
    assert find_lead(read_score(_score(tmp_path, [("Alto", ["る"]), ("Vo.", ["あ"])]))).name == "Vo."
    assert find_lead(read_score(_score(tmp_path, [("Counter melody", ["る"]), ("Melody", ["あ"])]))).name == "Melody"
    assert find_lead(read_score(_score(tmp_path, [("Voice", ["る"]), ("lead_vocal", ["あ"])]))).name == "lead_vocal"


def test_no_named_lead_takes_the_first_part_with_lyrics(tmp_path, caplog):
    score = read_score(_score(tmp_path, [("Vocal Percussion", ["ツ"]), ("Bass", [""]), ("Soprano", ["る"])]))
    with caplog.at_level(logging.INFO, logger="songbloom.data.lead"):
        part = find_lead(score, "song1")
    # vocal percussion is never taken by its name ("Vocal"), only as the first part with lyrics
    assert part.name == "Vocal Percussion"
    assert "song1: no part is named as the lead" in caplog.text


def test_lead_errors(tmp_path):
    with pytest.raises(LeadError, match="^no lyrics in lead part: P1 'Lead'"):
        find_lead(read_score(_score(tmp_path, [("Lead", ["", ""]), ("Alto", ["る"])])))
    with pytest.raises(LeadError, match="^no lead part: .*P1 'Alto', P2 'Bass'"):
        find_lead(read_score(_score(tmp_path, [("Alto", [""]), ("Bass", [""])])))


# ---------------------------------------------------------------- sections


@pytest.mark.parametrize("text, tag", [
    ("Verse 2", "[verse]"), ("Ａメロ", "[verse]"), ("Bメロ", "[verse]"), ("Pre-Chorus", "[verse]"), ("A'", "[verse]"),
    ("サビ", "[chorus]"), ("[Chorus]", "[chorus]"), ("大サビ", "[chorus]"), ("Cメロ", "[bridge]"), ("Bridge", "[bridge]"),
    ("Intro", "[intro]"), ("前奏", "[intro]"), ("間奏", "[inst]"), ("Interlude", "[inst]"), ("Coda", "[outro]"),
    ("rit.", None), ("a tempo", None), ("cresc.", None),
])
def test_section_words(text, tag):
    assert tag_of_words(text) == tag


def test_rehearsal_marks_always_start_a_section():
    assert tag_of_rehearsal("X1") == "[verse]"
    assert tag_of_rehearsal("2番") == "[verse]"
    assert tag_of_rehearsal("Chorus") == "[chorus]"


def test_sections_without_lyrics_become_non_vocal():
    sylls = [Syllable(3.0, 3.5, "あ"), Syllable(3.5, 4.0, "い"), Syllable(12.0, 12.5, "う")]
    starts = [(0.0, "[verse]"), (3.0, "[verse]"), (9.0, "[chorus]"), (12.0, "[verse]")]
    sections = settle_sections(build_sections(sylls, starts, 14.4))
    assert format_lyrics(sections) == "[intro] [intro] [intro] . [verse] あい . [inst] [inst] [inst] . [verse] う ."
    assert structure_of(sections) == [
        {"tag": "[intro]", "start": 0.0, "end": 1.0}, {"tag": "[intro]", "start": 1.0, "end": 2.0},
        {"tag": "[intro]", "start": 2.0, "end": 3.0}, {"tag": "[verse]", "start": 3.0, "end": 9.0},
        {"tag": "[inst]", "start": 9.0, "end": 10.0}, {"tag": "[inst]", "start": 10.0, "end": 11.0},
        {"tag": "[inst]", "start": 11.0, "end": 12.0}, {"tag": "[verse]", "start": 12.0, "end": 14.4},
    ]
    # lyrics under an Intro mark are a verse; lyrics before the first mark get a [verse] of their own
    sections = settle_sections(build_sections([Syllable(0.5, 1.0, "え")], [(0.0, "[intro]"), (4.0, "[outro]")], 6.0))
    assert format_lyrics(sections) == "[verse] え . [outro] [outro] ."
    sections = settle_sections(build_sections([Syllable(0.5, 1.0, "え")], [(2.0, "[chorus]")], 4.0))
    assert format_lyrics(sections) == "[verse] え . [outro] [outro] ."


# ---------------------------------------------------------------- Japanese text and lyric strings


def test_clean_japanese():
    kept, removed = clean_japanese("LAかえる123のＡ、々ー・うた! 漢字")
    assert kept == "かえるの、々ー・うた! 漢字"
    assert removed == Counter({"L": 1, "A": 1, "1": 1, "2": 1, "3": 1, "Ａ": 1})
    assert describe_removed(removed) == "6 (1, 2, 3, A, L, Ａ)"
    assert describe_removed(Counter()) == "0"
    assert has_japanese("ー・、。") is False
    assert has_japanese("LAヤ") is True


def test_plain_lines_and_tagged_lyrics():
    assert format_lyrics(parse_lyrics("かえるのうたが\n\n きこえて くるよ \n")) == \
        "[verse] かえるのうたが . きこえて くるよ ."
    tagged = "[intro] [intro] , [verse] そらわ、あおく。\n[CHORUS] ひかる！ ほし\n[inst]"
    assert format_lyrics(parse_lyrics(tagged)) == \
        "[intro] [intro] . [verse] そらわ , あおく . [chorus] ひかる . ほし . [inst] ."
    assert format_lyrics(parse_lyrics(format_lyrics(parse_lyrics(tagged)))) == format_lyrics(parse_lyrics(tagged))


def test_cleaning_lyric_text_merges_marks():
    sections = parse_lyrics("[verse] かえる , LALA . うた [chorus] BABA .")
    removed = clean_sections(sections)
    assert removed == Counter({"L": 2, "A": 4, "B": 2})
    assert format_lyrics([s for s in sections if s.phrases]) == "[verse] かえる . うた ."


# ---------------------------------------------------------------- prompt window


def _tone(seconds, amplitude, sr=1000):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * 100 * t)).astype(np.float32)


def test_prompt_window_has_the_most_energetic_frames():
    sr = 1000
    # 0-4 s silence, 4-9 s quiet singing, 9-11 s silence, 11-18 s loud singing, 18-20 s silence
    wav = np.concatenate([np.zeros(4 * sr), _tone(5, 0.1), np.zeros(2 * sr), _tone(7, 0.5), np.zeros(2 * sr)])
    # 5 s windows fully active: 4.0 (quiet) and 11.0-13.0 (loud); the loudest full window comes first at 11.0
    assert prompt_start(wav, sr, 5.0) == pytest.approx(11.0)


def test_prompt_never_starts_in_the_leading_silence():
    sr = 1000
    wav = np.concatenate([np.zeros(6 * sr), _tone(4, 0.3), np.zeros(10 * sr)]).astype(np.float32)
    # every window from 1.0 to 6.0 s holds the whole 4 s of singing; the earliest of them that does not
    # start in the leading silence is the one starting with the singing
    assert prompt_start(wav, sr, 5.0) == pytest.approx(6.0)
    assert prompt_start(np.zeros(10 * sr, dtype=np.float32), sr, 5.0) == 0.0
