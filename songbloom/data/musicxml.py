"""MusicXML scores (partwise or timewise; ``.musicxml``/``.xml`` or compressed ``.mxl``) to timed notes.

:func:`read_score` returns every part with its notes in seconds, the section
marks (``<rehearsal>`` and ``<words>`` directions, from any part) and the
score's length. Reading follows the score's own timing:

* durations are in ``<divisions>`` per quarter note (a part may change them);
  ``<backup>``/``<forward>`` move the time cursor, ``<chord/>`` notes sound with
  the note before them and are left out, grace and cue notes are left out;
* the tempo comes from ``<sound tempo="...">`` (quarter notes per minute) or
  else a ``<metronome>`` (its beat unit converted to quarters), from any part,
  and may change during the song; before the first mark it is 120;
* a note's lyric is the ``<text>`` of its first verse (``<lyric number="1">``,
  or the first ``<lyric>`` when none is numbered 1); ``<syllabic>`` is ignored
  (Japanese syllables are joined without spaces anyway), a lyric that is only
  ``<extend/>`` or ``_`` marks a melisma note;
* a note whose ``<tie>``/``<tied>`` says ``stop`` continues the note before.

Problems that make a score unusable raise :class:`ScoreError` with one line
(``broken MusicXML: line 12, column 4: mismatched tag``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TEMPO = 120.0
BEAT_UNITS = {"breve": 8.0, "whole": 4.0, "half": 2.0, "quarter": 1.0, "eighth": 0.5, "16th": 0.25, "32nd": 0.125}
MELISMA_TEXTS = frozenset({"_", "-", "~", "〜"})


class ScoreError(Exception):
    """A score that cannot be read; the message is one line starting with the kind of problem."""


@dataclass(frozen=True)
class Note:
    """A note or rest of one voice, in seconds from the start of the score.

    ``lyric`` is the first verse's text (None without one); ``melisma`` marks a
    lyric that only extends the syllable before; ``tie_stop`` a note tied
    from the note before.
    """

    start: float
    end: float
    rest: bool
    voice: str = "1"
    lyric: str | None = None
    melisma: bool = False
    tie_stop: bool = False


@dataclass(frozen=True)
class Mark:
    """A section mark: ``kind`` is ``rehearsal`` or ``words``."""

    time: float
    kind: str
    text: str


@dataclass
class Part:
    id: str
    name: str = ""
    labels: tuple[str, ...] = ()  # id, part-name, abbreviation, instrument names: what the lead rule looks at
    notes: list[Note] = field(default_factory=list)
    verses: int = 0  # how many lyric lines (verse numbers) its notes carry

    def lyric_notes(self) -> list[Note]:
        return [n for n in self.notes if not n.rest and n.lyric and not n.melisma]

    def describe(self) -> str:
        return f"{self.id} '{self.name}'" if self.name else self.id


@dataclass
class Score:
    path: Path
    parts: list[Part]
    marks: list[Mark]
    end: float  # seconds: the end of the last measure
    repeats: bool = False  # the score has repeat barlines (only one pass is read)


def _parse_error(path: Path, e: ET.ParseError) -> ScoreError:
    line, column = getattr(e, "position", (0, 0))
    message = re.sub(r":\s*line \d+, column \d+$", "", str(e))
    return ScoreError(f"broken MusicXML: line {line}, column {column}: {message}")


def _root(path: Path) -> ET.Element:
    if not path.is_file():
        raise ScoreError(f"missing MusicXML file: {path}")
    try:
        if path.suffix.lower() == ".mxl":
            return _mxl_root(path)
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        raise _parse_error(path, e) from None
    except OSError as e:
        raise ScoreError(f"unreadable MusicXML: {e.strerror or e}") from None


def _mxl_root(path: Path) -> ET.Element:
    """The score inside a compressed ``.mxl``: the container's first rootfile, else its first .xml/.musicxml."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            inner = None
            if "META-INF/container.xml" in names:
                container = ET.fromstring(z.read("META-INF/container.xml"))
                rootfile = next(iter(container.iter("rootfile")), None)
                if rootfile is not None and rootfile.get("full-path") in names:
                    inner = rootfile.get("full-path")
            if inner is None:
                inner = next((n for n in names if not n.startswith("META-INF/")
                              and n.lower().endswith((".xml", ".musicxml"))), None)
            if inner is None:
                raise ScoreError("unreadable MusicXML: the .mxl archive holds no score")
            return ET.fromstring(z.read(inner))
    except zipfile.BadZipFile as e:
        raise ScoreError(f"unreadable MusicXML: not a .mxl (zip) archive ({e})") from None


def _number(text: str | None, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ScoreError(f"broken MusicXML: {what} is not a number: {text!r}") from None


def _measures(root: ET.Element) -> dict[str, list[ET.Element]]:
    """Each part id's measure elements in order (a timewise score's ``<part>`` children stand for measures)."""
    if root.tag == "score-partwise":
        return {p.get("id", f"#{i + 1}"): p.findall("measure") for i, p in enumerate(root.findall("part"))}
    if root.tag == "score-timewise":
        out: dict[str, list[ET.Element]] = {}
        for measure in root.findall("measure"):
            for p in measure.findall("part"):
                out.setdefault(p.get("id", "#1"), []).append(p)
        return out
    raise ScoreError(f"unreadable MusicXML: the root element is <{root.tag}>, not <score-partwise> or <score-timewise>")


def _labels(root: ET.Element) -> dict[str, tuple[str, tuple[str, ...]]]:
    """part id -> (part-name, every name the part-list gives it)."""
    out = {}
    for sp in root.iter("score-part"):
        pid = sp.get("id", "")
        name = (sp.findtext("part-name") or "").strip()
        labels = [pid, name, (sp.findtext("part-abbreviation") or "").strip()]
        labels += [(t.text or "").strip() for t in sp.iter("display-text")]
        labels += [(t.text or "").strip() for t in sp.iter("instrument-name")]
        out[pid] = (name, tuple(x for x in labels if x))
    return out


def _lyric(note: ET.Element) -> tuple[str | None, bool, set[str]]:
    """(text of the first verse, melisma, verse numbers seen)."""
    lyrics = note.findall("lyric")
    if not lyrics:
        return None, False, set()
    numbers = {ly.get("number", "1") for ly in lyrics}
    first = next((ly for ly in lyrics if ly.get("number", "1") == "1"), lyrics[0])
    text = "".join((t.text or "") for t in first.findall("text")).strip()
    if text and text not in MELISMA_TEXTS:
        return text, False, numbers
    melisma = first.find("extend") is not None or text in MELISMA_TEXTS
    return None, melisma, numbers


def _tied_from_before(note: ET.Element) -> bool:
    types = [t.get("type") for t in note.findall("tie")] + [t.get("type") for t in note.iter("tied")]
    return "stop" in types or "continue" in types


def _direction_items(el: ET.Element):
    """(kind, value) of a direction or sound element: tempo in quarters/min, rehearsal or words text."""
    if el.tag == "sound":
        if el.get("tempo") is not None:
            yield "sound", _number(el.get("tempo"), "<sound tempo>")
        return
    for dt in el.findall("direction-type"):
        for r in dt.findall("rehearsal"):
            if (r.text or "").strip():
                yield "rehearsal", r.text.strip()
        for w in dt.findall("words"):
            if (w.text or "").strip():
                yield "words", w.text.strip()
        for m in dt.findall("metronome"):
            unit, per_minute = m.findtext("beat-unit"), m.findtext("per-minute")
            if unit in BEAT_UNITS and per_minute:
                match = re.search(r"\d+(\.\d+)?", per_minute)
                if match:
                    quarters = BEAT_UNITS[unit] * (1.5 if m.find("beat-unit-dot") is not None else 1.0)
                    yield "metronome", float(match.group()) * quarters
    sound = el.find("sound")
    if sound is not None:
        yield from _direction_items(sound)


@dataclass
class _RawNote:
    start: float  # quarters
    length: float
    rest: bool
    voice: str
    lyric: str | None
    melisma: bool
    tie_stop: bool


def _read_part(pid: str, measures: list[ET.Element], events: list) -> tuple[list[_RawNote], float, int, bool]:
    """Notes in quarters; appends (quarters, kind, value) direction events; returns (notes, end, verses, repeats)."""
    divisions = None
    measure_start = 0.0
    beats = 4.0
    notes: list[_RawNote] = []
    numbers: set[str] = set()
    repeats = False
    for m_index, measure in enumerate(measures, 1):
        cursor = 0.0
        furthest = 0.0
        last_start = 0.0
        where = f"part {pid} measure {measure.get('number', m_index)}"
        for el in measure:
            if el.tag == "attributes":
                if el.findtext("divisions") is not None:
                    divisions = _number(el.findtext("divisions"), f"<divisions> in {where}")
                    if divisions <= 0:
                        raise ScoreError(f"broken MusicXML: <divisions> must be positive in {where}")
                time = el.find("time")
                if time is not None and time.findtext("beats") and time.findtext("beat-type"):
                    try:
                        beats = 4.0 * _beats(time.findtext("beats")) / float(time.findtext("beat-type"))
                    except (ValueError, ZeroDivisionError):
                        pass
            elif el.tag in ("backup", "forward"):
                if divisions is None:
                    raise ScoreError(f"broken MusicXML: <{el.tag}> before any <divisions> in {where}")
                d = _number(el.findtext("duration"), f"<{el.tag}> duration in {where}") / divisions
                cursor += d if el.tag == "forward" else -d
                cursor = max(cursor, 0.0)
                furthest = max(furthest, cursor)
            elif el.tag == "note":
                if el.find("grace") is not None:
                    continue
                if el.findtext("duration") is None:
                    raise ScoreError(f"broken MusicXML: a note without <duration> in {where}")
                if divisions is None:
                    raise ScoreError(f"broken MusicXML: a note before any <divisions> in {where}")
                length = _number(el.findtext("duration"), f"note duration in {where}") / divisions
                chord = el.find("chord") is not None
                start = last_start if chord else cursor
                if not chord:
                    last_start = cursor
                    cursor += length
                    furthest = max(furthest, cursor)
                if chord or el.find("cue") is not None:
                    continue
                lyric, melisma, nums = _lyric(el)
                numbers |= nums
                notes.append(_RawNote(measure_start + start, length, el.find("rest") is not None,
                                      (el.findtext("voice") or "1").strip(), lyric, melisma, _tied_from_before(el)))
            elif el.tag in ("direction", "sound"):
                offset = el.findtext("offset")
                shift = _number(offset, f"<offset> in {where}") / divisions if offset and divisions else 0.0
                for kind, value in _direction_items(el):
                    events.append((measure_start + cursor + shift, kind, value))
            elif el.tag == "barline" and el.find("repeat") is not None:
                repeats = True
        measure_start += furthest if furthest > 0 else beats
    return notes, measure_start, len(numbers), repeats


def _beats(text: str) -> float:
    """``<beats>`` may be a sum such as ``3+2``."""
    return sum(float(x) for x in text.split("+"))


class _TempoMap:
    """Quarters -> seconds for a list of (quarters, quarter notes per minute) changes."""

    def __init__(self, changes: list[tuple[float, float]]):
        points: list[tuple[float, float]] = [(0.0, DEFAULT_TEMPO)]
        for q, bpm in sorted(changes, key=lambda c: c[0]):
            if bpm <= 0:
                continue
            if abs(q - points[-1][0]) < 1e-9:
                points[-1] = (points[-1][0], bpm)
            else:
                points.append((q, bpm))
        self.points = points
        self.offsets = [0.0]
        for (q0, b0), (q1, _) in zip(points, points[1:]):
            self.offsets.append(self.offsets[-1] + (q1 - q0) * 60.0 / b0)

    def seconds(self, q: float) -> float:
        i = max(k for k, (start, _) in enumerate(self.points) if start <= q + 1e-9)
        start, bpm = self.points[i]
        return self.offsets[i] + (q - start) * 60.0 / bpm


def read_score(path: str | Path) -> Score:
    """Read ``path`` (see the module docstring); raises :class:`ScoreError`."""
    path = Path(path)
    root = _root(path)
    measures = _measures(root)
    labels = _labels(root)
    events: list[tuple[float, str, object]] = []
    raw_parts = []
    end_q, repeats = 0.0, False
    for pid, part_measures in measures.items():
        notes, part_end, verses, part_repeats = _read_part(pid, part_measures, events)
        raw_parts.append((pid, notes, verses))
        end_q = max(end_q, part_end)
        repeats |= part_repeats
    # the tempo: <sound tempo> wins over a metronome mark at the same place; the first part's first
    tempo: dict[float, float] = {}
    for kind in ("sound", "metronome"):
        for q, k, value in events:
            if k == kind:
                tempo.setdefault(round(q, 6), float(value))
    tempo_map = _TempoMap(list(tempo.items()))
    marks: list[Mark] = []
    seen = set()
    for q, kind, value in events:
        if kind in ("rehearsal", "words"):
            key = (round(q, 6), kind, value)
            if key not in seen:
                seen.add(key)
                marks.append(Mark(tempo_map.seconds(q), kind, str(value)))
    marks.sort(key=lambda m: m.time)
    parts = []
    for pid, notes, verses in raw_parts:
        name, part_labels = labels.get(pid, ("", (pid,)))
        timed = [
            Note(tempo_map.seconds(n.start), tempo_map.seconds(n.start + n.length), n.rest, n.voice, n.lyric,
                 n.melisma, n.tie_stop)
            for n in sorted(notes, key=lambda n: n.start)
        ]
        parts.append(Part(pid, name, part_labels or (pid,), timed, verses))
    return Score(path, parts, marks, tempo_map.seconds(end_q), repeats)
