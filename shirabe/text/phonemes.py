"""The OpenJTalk phoneme inventory and the mora → katakana table.

OpenJTalk writes every mora as an optional onset (``k``, ``ky``, ``sh``, ...)
followed by a vowel, or as one of the two special morae ``N`` (moraic nasal)
and ``cl`` (the first half of a geminate). Devoiced vowels are written in
upper case (``I``, ``U``; the dictionary may mark any vowel). ``pau`` is a
pause inside the utterance and ``sil`` the silence around it.
"""

from __future__ import annotations

VOWELS = ("a", "i", "u", "e", "o")
DEVOICED_VOWELS = ("A", "I", "U", "E", "O")
SPECIAL_MORAE = ("N", "cl")
PAUSE = "pau"
SILENCE = "sil"

# katakana of onset + (a, i, u, e, o); None where no kana spelling exists.
_ROWS: dict[str, tuple[str | None, ...]] = {
    "": ("ア", "イ", "ウ", "エ", "オ"),
    "k": ("カ", "キ", "ク", "ケ", "コ"),
    "g": ("ガ", "ギ", "グ", "ゲ", "ゴ"),
    "s": ("サ", "スィ", "ス", "セ", "ソ"),
    "z": ("ザ", "ズィ", "ズ", "ゼ", "ゾ"),
    "t": ("タ", "ティ", "トゥ", "テ", "ト"),
    "d": ("ダ", "ディ", "ドゥ", "デ", "ド"),
    "n": ("ナ", "ニ", "ヌ", "ネ", "ノ"),
    "h": ("ハ", "ヒ", "ホゥ", "ヘ", "ホ"),
    "b": ("バ", "ビ", "ブ", "ベ", "ボ"),
    "p": ("パ", "ピ", "プ", "ペ", "ポ"),
    "m": ("マ", "ミ", "ム", "メ", "モ"),
    "y": ("ヤ", None, "ユ", "イェ", "ヨ"),
    "r": ("ラ", "リ", "ル", "レ", "ロ"),
    "w": ("ワ", "ウィ", None, "ウェ", "ウォ"),
    "f": ("ファ", "フィ", "フ", "フェ", "フォ"),
    "v": ("ヴァ", "ヴィ", "ヴ", "ヴェ", "ヴォ"),
    "sh": ("シャ", "シ", "シュ", "シェ", "ショ"),
    "j": ("ジャ", "ジ", "ジュ", "ジェ", "ジョ"),
    "ch": ("チャ", "チ", "チュ", "チェ", "チョ"),
    "ts": ("ツァ", "ツィ", "ツ", "ツェ", "ツォ"),
    "ky": ("キャ", None, "キュ", "キェ", "キョ"),
    "gy": ("ギャ", None, "ギュ", "ギェ", "ギョ"),
    "ny": ("ニャ", None, "ニュ", "ニェ", "ニョ"),
    "hy": ("ヒャ", None, "ヒュ", "ヒェ", "ヒョ"),
    "by": ("ビャ", None, "ビュ", "ビェ", "ビョ"),
    "py": ("ピャ", None, "ピュ", "ピェ", "ピョ"),
    "my": ("ミャ", None, "ミュ", "ミェ", "ミョ"),
    "ry": ("リャ", None, "リュ", "リェ", "リョ"),
    "ty": ("テャ", None, "テュ", None, "テョ"),
    "dy": ("デャ", None, "デュ", "デェ", "デョ"),
    "fy": (None, None, "フュ", None, None),
    "kw": ("クァ", "クィ", "クゥ", "クェ", "クォ"),
    "gw": ("グァ", "グィ", "グゥ", "グェ", "グォ"),
}

CONSONANTS = tuple(sorted(onset for onset in _ROWS if onset))

#: Every phoneme a mora can contain, in the order used for token tables.
PHONEMES = tuple(sorted(VOWELS + DEVOICED_VOWELS + SPECIAL_MORAE + CONSONANTS))

MORA_FINAL = frozenset(VOWELS + DEVOICED_VOWELS + SPECIAL_MORAE)

LONG_VOWEL_MARK = "ー"

_VOICED = {v.upper(): v for v in VOWELS}


def _build_kana_table() -> dict[tuple[str, ...], str]:
    table: dict[tuple[str, ...], str] = {("N",): "ン", ("cl",): "ッ"}
    for onset, row in _ROWS.items():
        for vowel, kana in zip(VOWELS, row):
            if kana is None:
                continue
            for v in (vowel, vowel.upper()):
                table[(onset, v) if onset else (v,)] = kana
    return table


MORA_KANA: dict[tuple[str, ...], str] = _build_kana_table()

#: Every katakana token the ``kana`` scheme can emit (one per mora), table order.
KANA_TOKENS: tuple[str, ...] = tuple(dict.fromkeys([*MORA_KANA.values(), LONG_VOWEL_MARK]))


def voiced(phoneme: str) -> str:
    """The voiced vowel of a devoiced one (``U`` → ``u``); anything else unchanged."""
    return _VOICED.get(phoneme, phoneme)


def mora_kana(phones: tuple[str, ...]) -> str | None:
    """Katakana of one mora given as OpenJTalk phonemes, or None if it has no spelling."""
    return MORA_KANA.get(phones)
