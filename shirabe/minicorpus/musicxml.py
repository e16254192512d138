"""MusicXML (partwise) for mini-corpus songs, with one lyric syllable per note.

A score holds any of a song's parts (all six by default, as jaCappella's scores
do). ``svs=True`` writes the lyrics as sung (particle は as わ, へ as え, を as
お), like jaCappella's ``_SVS`` scores; that is also the form pysinsy sings.
Note lengths that are not a plain or dotted value (5 or 7 eighths) are written
as tied notes, the lyric on the first.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from shirabe.minicorpus.files import write_text
from shirabe.minicorpus.score import PARTS, STEPS_PER_BAR, Note, Song

DIVISIONS = 2  # per quarter note: one division is one eighth-note step
COMPOSER = "Shirabe mini corpus"
PART_NAMES = {
    "lead_vocal": "Lead Vocal",
    "soprano": "Soprano",
    "alto": "Alto",
    "tenor": "Tenor",
    "bass": "Bass",
    "vocal_percussion": "Vocal Percussion",
}
CLEFS = {"tenor": ("G", 2, -1), "bass": ("F", 4, 0)}  # (sign, line, octave change); G clef otherwise
# length in steps -> (type, dotted), and the order lengths are split in
NOTE_TYPES = {8: ("whole", False), 6: ("half", True), 4: ("half", False), 3: ("quarter", True), 2: ("quarter", False), 1: ("eighth", False)}
# where each percussion hit is drawn on the staff, and its notehead
DRUM_DISPLAY = {"kick": ("F", 4, "normal"), "snare": ("C", 5, "normal"), "hat": ("G", 5, "x")}
_SHARP_SPELLING = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_SPELLING = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_DOCTYPE = (
    '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
    '"http://www.musicxml.org/dtds/partwise.dtd">'
)


def _sub(parent: ET.Element, tag: str, text: object = None, **attrib) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: str(v) for k, v in attrib.items()})
    if text is not None:
        el.text = str(text)
    return el


def split_length(length: int) -> list[int]:
    """Lengths of the tied notes that write a note of ``length`` steps."""
    pieces = []
    while length > 0:
        piece = next(n for n in NOTE_TYPES if n <= length)
        pieces.append(piece)
        length -= piece
    return pieces


def _pitch(parent: ET.Element, midi: int, fifths: int) -> None:
    name = (_FLAT_SPELLING if fifths < 0 else _SHARP_SPELLING)[midi % 12]
    pitch = _sub(parent, "pitch")
    _sub(pitch, "step", name[0])
    if len(name) > 1:
        _sub(pitch, "alter", 1 if name[1] == "#" else -1)
    _sub(pitch, "octave", midi // 12 - 1)


def _note(measure: ET.Element, note: Note, length: int, fifths: int, tie: tuple[str, ...], lyric: str) -> None:
    el = _sub(measure, "note")
    if note.drum:
        step, octave, head = DRUM_DISPLAY[note.drum]
        unpitched = _sub(el, "unpitched")
        _sub(unpitched, "display-step", step)
        _sub(unpitched, "display-octave", octave)
    elif note.pitch is None:
        _sub(el, "rest")
    else:
        _pitch(el, note.pitch, fifths)
    _sub(el, "duration", length * DIVISIONS // 2)
    for kind in tie:
        _sub(el, "tie", type=kind)
    _sub(el, "voice", 1)
    kind, dotted = NOTE_TYPES[length]
    _sub(el, "type", kind)
    if dotted:
        _sub(el, "dot")
    if note.drum:
        _sub(el, "notehead", head)
    if tie:
        notations = _sub(el, "notations")
        for kind in tie:
            _sub(notations, "tied", type=kind)
    if lyric:
        lyr = _sub(el, "lyric", number=1)
        _sub(lyr, "syllabic", "single")
        _sub(lyr, "text", lyric)


def _attributes(measure: ET.Element, song: Song, part: str) -> None:
    attrs = _sub(measure, "attributes")
    _sub(attrs, "divisions", DIVISIONS)
    key = _sub(attrs, "key")
    _sub(key, "fifths", song.fifths)
    _sub(key, "mode", "major")
    time = _sub(attrs, "time")
    _sub(time, "beats", 4)
    _sub(time, "beat-type", 4)
    clef = _sub(attrs, "clef")
    if part == "vocal_percussion":
        _sub(clef, "sign", "percussion")
        return
    sign, line, octave_change = CLEFS.get(part, ("G", 2, 0))
    _sub(clef, "sign", sign)
    _sub(clef, "line", line)
    if octave_change:
        _sub(clef, "clef-octave-change", octave_change)


def _tempo(measure: ET.Element, bpm: int) -> None:
    direction = _sub(measure, "direction", placement="above")
    metronome = _sub(_sub(direction, "direction-type"), "metronome")
    _sub(metronome, "beat-unit", "quarter")
    _sub(metronome, "per-minute", bpm)
    _sub(direction, "sound", tempo=bpm)


def score_xml(song: Song, parts: tuple[str, ...] = PARTS, svs: bool = False) -> str:
    """The MusicXML text of ``parts`` of ``song``."""
    root = ET.Element("score-partwise", version="4.0")
    _sub(_sub(root, "work"), "work-title", song.title_ja)
    ident = _sub(root, "identification")
    _sub(ident, "creator", COMPOSER, type="composer")
    _sub(ident, "creator", COMPOSER, type="lyricist")
    part_list = _sub(root, "part-list")
    ids = {part: f"P{i + 1}" for i, part in enumerate(parts)}
    for part in parts:
        _sub(_sub(part_list, "score-part", id=ids[part]), "part-name", PART_NAMES[part])
    for part in parts:
        part_el = _sub(root, "part", id=ids[part])
        measures = []
        for bar in range(song.num_steps // STEPS_PER_BAR):
            measure = _sub(part_el, "measure", number=bar + 1)
            if bar == 0:
                _attributes(measure, song, part)
                _tempo(measure, song.bpm)
            measures.append(measure)
        for note in song.parts[part]:
            bar = note.start // STEPS_PER_BAR
            if (note.end - 1) // STEPS_PER_BAR != bar:
                raise ValueError(f"{song.title}/{part}: note at step {note.start} crosses a bar line")
            pieces = split_length(note.length)
            for i, length in enumerate(pieces):
                tie = ()
                if len(pieces) > 1 and not note.is_rest:
                    tie = ("start",) if i == 0 else ("stop",) if i == len(pieces) - 1 else ("stop", "start")
                lyric = (note.sung if svs else note.lyric) if i == 0 else ""
                _note(measures[bar], note, length, song.fifths, tie, lyric)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{_DOCTYPE}\n{body}\n'


def write_musicxml(path: str | Path, song: Song, parts: tuple[str, ...] = PARTS, svs: bool = False) -> Path:
    """Write :func:`score_xml` to ``path`` atomically."""
    return write_text(path, score_xml(song, parts, svs))
