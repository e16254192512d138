"""The Japanese frontend: text → tokens of one scheme.

>>> g2p = JapaneseFrontend("prosody")                    # doctest: +SKIP
>>> g2p("箸が折れた。")                                   # doctest: +SKIP
['^', 'h', 'a', ']', 'sh', 'i', 'g', 'a', '#', 'o', ']', 'r', 'e', 't', 'a', '$']
"""

from __future__ import annotations

from pathlib import Path

from shirabe.text.openjtalk import OpenJTalkRunner, Utterance
from shirabe.text.schemes import DEFAULT_SCHEME, Scheme, get_scheme


class JapaneseFrontend:
    """Normalisation, OpenJTalk (optionally with a user dictionary) and a token scheme.

    Args:
        scheme: scheme name (``prosody``, ``hl``, ``phone``, ``kana``).
        user_dict: MeCab CSV user dictionary (compiled once, cached by content hash).
        lowercase_devoiced: write devoiced vowels ``I``/``U`` as ``i``/``u``.
        cache_dir: where compiled user dictionaries live (default: see
            :func:`shirabe.text.openjtalk.default_cache_dir`).
        quiet: discard the warnings OpenJTalk prints to stdout/stderr (see
            :class:`~shirabe.text.openjtalk.OpenJTalkRunner`).

    Raises :class:`~shirabe.text.schemes.UnknownSchemeError` for an unknown
    scheme and :class:`~shirabe.text.openjtalk.UserDictError` for a bad
    dictionary; calling it raises :class:`~shirabe.text.normalize.TextError`
    (e.g. :class:`~shirabe.text.openjtalk.NoPronunciationError`) for text it
    cannot pronounce.
    """

    def __init__(
        self,
        scheme: str = DEFAULT_SCHEME,
        user_dict: str | Path | None = None,
        lowercase_devoiced: bool = False,
        cache_dir: str | Path | None = None,
        quiet: bool = False,
    ):
        self.scheme: Scheme = get_scheme(scheme, lowercase_devoiced=lowercase_devoiced)
        self.runner = OpenJTalkRunner(user_dict=user_dict, cache_dir=cache_dir, quiet=quiet)

    def utterance(self, text: str) -> Utterance:
        return self.runner.utterance(text)

    def __call__(self, text: str) -> list[str]:
        return self.scheme(self.runner.utterance(text))

    def inventory(self) -> list[str]:
        return self.scheme.inventory()
