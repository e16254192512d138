"""Lyrics in the model's format: ``[tag] sentence.sentence ; [tag] ...``.

The rules (applied to every song's ``gt_lyric`` before it is prepared or generated):

1. NFKC (full-width Latin, digits and punctuation become half-width).
2. Structure tags are the bracketed words; each must be one of the model's lyric tags
   (:func:`structure_tags`: the 13 of the released vocabulary — ``[verse] [chorus] [bridge]``,
   ``[intro|outro|inst-short|medium|long]``, ``[silence]`` — or those of the checkpoint's
   ``config.yaml``). An unknown or stale tag (``[intro]``, ``[Verse]``), text before the first
   tag, or an unbalanced bracket is a :class:`LyricsError` naming it.
3. The text after a tag, up to the next tag, is its section. Sentences are split at line breaks,
   ``;``, and ``. ! ? 。 ！ ？`` (a ``.`` between two digits stays); empty sentences are dropped and
   spaces collapsed. ``[verse] [chorus] [bridge]`` need at least one sentence; the other tags
   (intro, outro, inst, silence) take none.
4. Japanese: with ``language="ja"``, or ``"auto"`` and kana in the section, each line first goes
   through :func:`shirabe.text.normalize.normalize` (NFKC, emoji removed, punctuation unified to
   ``、。！？「」…``; a ruby span ``{漢字|かんじ}`` keeps its base text); the ``、`` inside a
   sentence stays.
5. Output: sentences joined by ``.``; a section whose text has no CJK or kana character ends with
   ``.`` (English), others do not (Chinese, Japanese); sections joined by `` ; ``, each
   ``[tag] text`` (a tag without lyrics alone).
"""

from __future__ import annotations

import re
import unicodedata

from shirabe.cli import InputError

DEFAULT_TAGS = ("[verse]", "[chorus]", "[bridge]", "[intro-short]", "[intro-medium]", "[intro-long]",
                "[outro-short]", "[outro-medium]", "[outro-long]", "[inst-short]", "[inst-medium]", "[inst-long]",
                "[silence]")
VOCAL_TAGS = ("[verse]", "[chorus]", "[bridge]")
LANGUAGES = ("auto", "ja", "en", "zh")

_TAG = re.compile(r"\[[^\[\]]*\]")
_SPLIT = re.compile(r"[\n;!?。！？]|\.(?!\d)|(?<!\d)\.")
_KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_SPACES = re.compile(r"\s+")
_EDGE_PUNCT = " ,、,"


class LyricsError(InputError):
    """Lyrics that do not fit the model's format; the message names the offending tag or text."""


def structure_tags(config=None) -> list[str]:
    """The bracketed lyric tags of a :class:`~songgeneration.models.config.LeLMConfig` (default: the 13)."""
    if config is None:
        return list(DEFAULT_TAGS)
    return [t for t in config.lyric_tags if t.startswith("[") and t.endswith("]")]


def _check_tag(tag: str, known: list[str]) -> None:
    if tag in known:
        return
    hint = ""
    for guess in (tag.lower(), tag.lower()[:-1] + "-short]"):
        if guess in known:
            hint = f" (did you mean '{guess}'?)"
            break
    raise LyricsError(f"unknown structure tag '{tag}'{hint}; the model's tags are: {' '.join(known)}")


def _japanese_line(line: str) -> str:
    from shirabe.text.normalize import normalize

    return "".join(segment.text for segment in normalize(line)) if line.strip() else ""


def _sentences(body: str, japanese: bool) -> list[str]:
    if japanese:
        body = "\n".join(_japanese_line(line) for line in re.split(r"[\n;]", body))
    parts = _SPLIT.split(body)
    out = []
    for part in parts:
        part = _SPACES.sub(" ", part).strip(_EDGE_PUNCT + "\t")
        if part:
            out.append(part)
    return out


def normalize_lyrics(text: str, tags: list[str] | tuple[str, ...] = DEFAULT_TAGS, language: str = "auto") -> str:
    """``text`` in the model's lyric format (see the module doc); mistakes raise :class:`LyricsError`."""
    if language not in LANGUAGES:
        raise InputError(f"lyrics language '{language}' (expected one of: {', '.join(LANGUAGES)})")
    known = list(tags)
    text = unicodedata.normalize("NFKC", text)
    found = list(_TAG.finditer(text))
    rest = _TAG.sub(" ", text)
    if "[" in rest or "]" in rest:
        raise LyricsError("unbalanced '[' or ']' outside a structure tag")
    if not found:
        raise LyricsError("no structure tag (lyrics start with one, e.g. '[verse]')")
    head = text[: found[0].start()].strip(" \t\n;.")
    if head:
        raise LyricsError(f"text before the first structure tag: '{head[:30]}'")
    sections = []
    for i, m in enumerate(found):
        tag = m.group(0)
        _check_tag(tag, known)
        body = text[m.end(): found[i + 1].start() if i + 1 < len(found) else len(text)]
        japanese = language == "ja" or (language == "auto" and bool(_KANA.search(body)))
        try:
            sentences = _sentences(body, japanese)
        except InputError as e:
            raise LyricsError(f"{tag}: {e}") from None
        if tag in VOCAL_TAGS and not sentences:
            raise LyricsError(f"'{tag}' has no lyrics (sections without singing use intro/inst/outro tags)")
        if tag not in VOCAL_TAGS and sentences:
            raise LyricsError(f"'{tag}' takes no lyrics, got '{sentences[0][:30]}'")
        if not sentences:
            sections.append(tag)
            continue
        joined = ".".join(sentences)
        if not _CJK.search(joined):
            joined += "."
        sections.append(f"{tag} {joined}")
    return " ; ".join(sections)
