"""Japanese text frontend shared by every Shirabe package (pyopenjtalk-plus).

Text is normalised (:mod:`shirabe.text.normalize`), read by OpenJTalk into
full-context labels (:mod:`shirabe.text.openjtalk`, with an optional user
dictionary and ruby overrides ``{漢字|かんじ}``) and turned into tokens by a
named scheme (:mod:`shirabe.text.schemes`: ``prosody``, ``hl``, ``phone``,
``kana``). :mod:`shirabe.text.tokens` writes and extends ``tokens.txt`` tables,
:mod:`shirabe.text.ipa` maps Japanese tokens to espeak IPA tokens and
:mod:`shirabe.text.batch` tokenises many texts in parallel.
"""

from shirabe.text.frontend import JapaneseFrontend
from shirabe.text.normalize import TextError, normalize, normalize_text
from shirabe.text.openjtalk import NoPronunciationError, UserDictError, compile_user_dict
from shirabe.text.schemes import DEFAULT_SCHEME, SCHEMES, UnknownSchemeError, get_scheme
from shirabe.text.tokens import PAD, TokenTable, UnknownTokenError

__all__ = [
    "DEFAULT_SCHEME",
    "PAD",
    "SCHEMES",
    "JapaneseFrontend",
    "NoPronunciationError",
    "TextError",
    "TokenTable",
    "UnknownSchemeError",
    "UnknownTokenError",
    "UserDictError",
    "compile_user_dict",
    "get_scheme",
    "normalize",
    "normalize_text",
]
