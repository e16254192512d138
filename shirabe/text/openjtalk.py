"""OpenJTalk (pyopenjtalk-plus) behind the frontend: labels, morae, user dictionaries, ruby.

Full-context labels are parsed into :class:`Mora` records carrying the fields
the token schemes need:

* ``a1``: mora position relative to the accent nucleus (0 on the nucleus,
  negative before it, positive after it; for an unaccented phrase the last mora
  counts as the nucleus),
* ``a2`` / ``a3``: position of the mora in its accent phrase counted from the
  start / from the end (both 1-based),
* ``f1``: number of morae in the accent phrase,

and :class:`Utterance` adds pauses and whether the utterance is a question
(``E3`` of the final silence label, i.e. the last accent phrase is
interrogative).

A user dictionary is a MeCab CSV in the naist-jdic layout that pyopenjtalk-plus
compiles (``surface,left_id,right_id,cost,pos,pos1,pos2,pos3,ctype,cform,base,
reading,pronunciation,accent/morae,chain_rule``; the ids may be left empty).
It is compiled once into the cache directory under the SHA-256 of its content
and reused from there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyopenjtalk
from pyopenjtalk.openjtalk import OpenJTalk

from shirabe.text.normalize import Segment, TextError, normalize
from shirabe.text.phonemes import MORA_FINAL, PAUSE, SILENCE

logger = logging.getLogger(__name__)


def _single_threaded_reading_model() -> bool:
    """Re-open pyopenjtalk-plus's small ONNX reading model (何: ナニ/ナン) on one thread.

    pyopenjtalk-plus opens it at import with onnxruntime's defaults: a thread pool
    as wide as the machine whose workers spin after every tiny call, so one
    tokenising process kept a second core busy for nothing (process CPU time twice
    the wall time) and N processes fought over the cores. One thread without
    spinning gives the same labels at the same speed for half the CPU. Returns
    whether the sessions were replaced (False where the module has no such model).
    """
    try:
        import onnxruntime
        from pyopenjtalk.yomi_model import nani_predict
    except ImportError:
        return False
    files = {"enc_session": "nani_enc.onnx", "model_session": "nani_model.onnx"}
    model_dir = getattr(nani_predict, "MODEL_DIR", None)
    if model_dir is None or any(getattr(nani_predict, name, None) is None or not (Path(model_dir) / file).is_file()
                                for name, file in files.items()):
        return False
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, file in files.items():
        setattr(nani_predict, name, onnxruntime.InferenceSession(str(Path(model_dir) / file), options,
                                                                 providers=["CPUExecutionProvider"]))
    return True


_single_threaded_reading_model()


class NoPronunciationError(TextError):
    """The text has nothing OpenJTalk can pronounce (empty, only punctuation, ...)."""


class UserDictError(TextError):
    """The user dictionary is missing or does not compile."""


class Mora(NamedTuple):
    phones: tuple[str, ...]
    a1: int
    a2: int
    a3: int
    f1: int


PAUSE_ITEM = None  # a pause inside the utterance, in Utterance.items


@dataclass
class Utterance:
    """Morae and pauses (``None``) in order, and whether the utterance is a question."""

    items: list[Mora | None]
    interrogative: bool

    @property
    def morae(self) -> list[Mora]:
        return [m for m in self.items if m is not None]


# ---------------------------------------------------------------------------
# Label parsing


def _int(field: str) -> int:
    return 0 if field == "xx" else int(field)


def parse_labels(labels: Sequence[str]) -> Utterance:
    """Group the phonemes of full-context ``labels`` into morae and pauses."""
    items: list[Mora | None] = []
    pending: list[str] = []
    for lab in labels:
        i = lab.index("-")
        j = lab.index("+", i)
        phone = lab[i + 1 : j]
        if phone == SILENCE or phone == PAUSE:
            if pending:  # a dangling onset (never produced by OpenJTalk)
                items.append(Mora(tuple(pending), 0, 1, 1, 1))
                pending = []
            if phone == PAUSE and items and items[-1] is not None:
                items.append(PAUSE_ITEM)
            continue
        pending.append(phone)
        if phone in MORA_FINAL:
            ia = lab.index("/A:", j) + 3
            a1, a2, a3 = lab[ia : lab.index("/B:", ia)].split("+")
            iff = lab.index("/F:", ia) + 3
            f1 = lab[iff : lab.index("_", iff)]
            try:
                items.append(Mora(tuple(pending), int(a1), int(a2), int(a3), int(f1)))
            except ValueError:  # "xx" fields
                items.append(Mora(tuple(pending), _int(a1), _int(a2), _int(a3), _int(f1)))
            pending = []
    if pending:
        items.append(Mora(tuple(pending), 0, 1, 1, 1))
    while items and items[-1] is None:
        items.pop()
    interrogative = False
    if labels:
        last = labels[-1]
        ie = last.index("!")
        interrogative = last[ie + 1 : last.index("_", ie)] == "1"
    return Utterance(items, interrogative)


# ---------------------------------------------------------------------------
# User dictionaries


def default_cache_dir() -> Path:
    """``$SHIRABE_CACHE_DIR``, else ``$XDG_CACHE_HOME/shirabe``, else ``~/.cache/shirabe``."""
    env = os.environ.get("SHIRABE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "shirabe"


@contextlib.contextmanager
def silence_c_output() -> Iterator[None]:
    """Send what C code writes to stdout/stderr to /dev/null for the duration.

    OpenJTalk prints progress and warnings straight to the file descriptors,
    which would mix into a binary's output.
    """
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:
                pass
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def user_dict_hash(csv_path: str | Path) -> str:
    """SHA-256 of the CSV's bytes and the pyopenjtalk-plus version (a compiled
    dictionary depends on the system dictionary it was built against)."""
    h = hashlib.sha256()
    h.update(Path(csv_path).read_bytes())
    h.update(b"\0pyopenjtalk-plus " + pyopenjtalk.__version__.encode())
    return h.hexdigest()


def compile_user_dict(csv_path: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Compile ``csv_path`` into ``<cache_dir>/userdict/<sha256>.dic`` unless already there.

    Returns the path of the compiled dictionary. Raises :class:`UserDictError`
    if the CSV is missing or does not compile.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise UserDictError(f"{csv_path}: no such user dictionary")
    out_dir = Path(cache_dir or default_cache_dir()) / "userdict"
    out = out_dir / f"{user_dict_hash(csv_path)}.dic"
    if out.is_file():
        logger.debug("user dictionary %s: using cached %s", csv_path, out)
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=".dic", dir=out_dir)
    os.close(fd)
    try:
        with silence_c_output():
            pyopenjtalk.mecab_dict_index(str(csv_path), tmp)
        if os.path.getsize(tmp) == 0:
            raise RuntimeError("empty output")
        os.replace(tmp, out)
    except (RuntimeError, OSError) as e:
        raise UserDictError(f"{csv_path}: cannot compile the user dictionary ({e})") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("user dictionary %s compiled to %s", csv_path, out)
    return out


# ---------------------------------------------------------------------------
# Running OpenJTalk

_SMALL_KANA = set("ァィゥェォャュョヮ")
_LONG_VOWEL = re.compile(r"(?<=[アカサタナハマヤラワガザダバパァャヮ])ア|(?<=[イキシチニヒミリギジヂビピィ])イ|"
                         r"(?<=[ウクスツヌフムユルグズヅブプゥュ])ウ|(?<=[エケセテネヘメレゲゼデベペェ])[エイ]|"
                         r"(?<=[オコソトノホモヨロゴゾドボポォョ])[オウ]")  # fmt: skip


def _mora_count(kana: str) -> int:
    return sum(1 for c in kana if c not in _SMALL_KANA)


def _same_reading(read: str, reading: str) -> bool:
    return read == reading or _LONG_VOWEL.sub("ー", read) == _LONG_VOWEL.sub("ー", reading)


def _hiragana(kana: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in kana)


class OpenJTalkRunner:
    """pyopenjtalk-plus with an optional user dictionary; text → full-context labels.

    Without a user dictionary the module's global OpenJTalk instance is used, so
    results are exactly those of ``pyopenjtalk.extract_fullcontext``. With
    ``quiet=True`` the warnings OpenJTalk prints to the process's stdout/stderr
    are discarded (binaries use this to keep their output clean; it briefly
    redirects the file descriptors, so leave it off in threaded programs).
    """

    def __init__(
        self, user_dict: str | Path | None = None, cache_dir: str | Path | None = None, quiet: bool = False
    ):
        self.quiet = quiet
        self.user_dict = None if user_dict is None else Path(user_dict)
        self.jtalk: OpenJTalk | None = None
        if self.user_dict is not None:
            dic = compile_user_dict(self.user_dict, cache_dir)
            try:
                self.jtalk = OpenJTalk(dn_mecab=pyopenjtalk.OPEN_JTALK_DICT_DIR, userdic=str(dic).encode())
            except RuntimeError as e:
                raise UserDictError(f"{self.user_dict}: cannot load the user dictionary ({e})") from e

    # -- text → NJD features ------------------------------------------------
    def njd_features(self, segments: Sequence[Segment]) -> list[dict]:
        if all(s.reading is None for s in segments):
            return pyopenjtalk.run_frontend("".join(s.text for s in segments), jtalk=self.jtalk)
        return self._njd_with_ruby(segments)

    def _run_mecab(self, text: str) -> list[str]:
        return pyopenjtalk.run_mecab(text, jtalk=self.jtalk)

    def _nbest(self, text: str, n: int = 32) -> list[list[str]]:
        return [p["features"] for p in pyopenjtalk.run_mecab_nbest_features(text, n, jtalk=self.jtalk)]

    def _ruby_features(self, base: str, reading: str) -> list[str]:
        """MeCab features that read ``base`` as ``reading`` (katakana).

        The accent comes from the dictionary where possible: first an analysis
        of the base text with that reading (``{明日|あす}`` takes the accent of
        明日/アス), then an analysis of the reading written in kana; otherwise
        the span becomes one unaccented noun. Surfaces are replaced by the kana
        so that later reading corrections leave the span alone.
        """
        hira = _hiragana(reading)
        for source, single_noun in ((base, False), (hira, True), (hira, False)):
            for path in self._nbest(source):
                fields = [f.split(",") for f in path]
                if any(len(f) < 12 for f in fields):
                    continue
                if single_noun and (len(fields) != 1 or fields[0][1] != "名詞"):
                    continue
                if "".join(f[8] for f in fields) != reading and not (
                    len(fields) == 1 and _same_reading(fields[0][8], reading)
                ):
                    continue
                if any(f[1] in ("助詞", "助動詞") for f in fields):
                    continue
                out = []
                for f in fields:
                    surface = _hiragana(f[8])
                    f = [surface, *f[1:7], surface, *f[8:]]
                    out.append(",".join(f))
                return out
        n = _mora_count(reading)
        return [f"{hira},名詞,一般,*,*,*,*,{hira},{reading},{reading},0/{n},C2"]

    def _njd_with_ruby(self, segments: Sequence[Segment]) -> list[dict]:
        features: list[str] = []
        for seg in segments:
            if seg.reading is None:
                features += self._run_mecab(seg.text)
            else:
                features += self._ruby_features(seg.text, seg.reading)
        njd = pyopenjtalk.run_njd_from_mecab(
            features, restore_unknown_katakana=True, modify_numeral_reading=True, jtalk=self.jtalk
        )
        text = "".join(s.text if s.reading is None else _hiragana(s.reading) for s in segments)
        return pyopenjtalk.apply_postprocessing(text, njd, jtalk=self.jtalk)

    # -- NJD features → labels ----------------------------------------------
    def labels(self, segments: Sequence[Segment]) -> list[str]:
        """Full-context labels; raises :class:`NoPronunciationError` when there is nothing to say."""
        if not segments:
            raise NoPronunciationError("nothing to pronounce")
        with silence_c_output() if self.quiet else contextlib.nullcontext():
            njd = self.njd_features(segments)
            if not any(f["mora_size"] > 0 for f in njd):
                raise NoPronunciationError("nothing to pronounce")
            labels = pyopenjtalk.make_label(njd, jtalk=self.jtalk)
        if len(labels) < 3:
            raise NoPronunciationError("nothing to pronounce")
        return labels

    def utterance(self, text: str) -> Utterance:
        """Normalise ``text``, run OpenJTalk and parse the labels."""
        utt = parse_labels(self.labels(normalize(text)))
        if not utt.items:
            raise NoPronunciationError("nothing to pronounce")
        return utt
