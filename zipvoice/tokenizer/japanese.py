"""Japanese tokenizer for ZipVoice (``--tokenizer japanese``): a thin layer over :mod:`shirabe.text`.

>>> tok = JapaneseTokenizer(scheme="prosody")                  # doctest: +SKIP
>>> tok.texts_to_tokens(["箸が折れた。"])                        # doctest: +SKIP
[['^', 'h', 'a', ']', 'sh', 'i', 'g', 'a', '#', 'o', ']', 'r', 'e', 't', 'a', '$']]

Without ``token_file`` the table is the scheme's full inventory (``_`` = 0,
as ``prepare_token_file`` writes it). Unlike the upstream tokenizers, a token
missing from the table is never dropped: ``tokens_to_token_ids`` raises
:class:`~shirabe.text.tokens.UnknownTokenError` (batch preparation counts them
instead, see :func:`shirabe.text.batch.tokenize_texts`).
"""

from __future__ import annotations

from pathlib import Path

from shirabe.text import JapaneseFrontend
from shirabe.text.schemes import DEFAULT_SCHEME
from shirabe.text.tokens import TokenTable, scheme_table
from zipvoice.tokenizer.tokenizer import Tokenizer


class JapaneseTokenizer(Tokenizer):
    """pyopenjtalk-plus G2P with pitch-accent marks; ``scheme`` is ``prosody``, ``hl``, ``phone`` or ``kana``."""

    def __init__(
        self,
        token_file: str | Path | None = None,
        scheme: str = DEFAULT_SCHEME,
        user_dict: str | Path | None = None,
        lowercase_devoiced: bool = False,
        cache_dir: str | Path | None = None,
    ):
        super().__init__(token_file)
        self.frontend = JapaneseFrontend(
            scheme, user_dict=user_dict, lowercase_devoiced=lowercase_devoiced, cache_dir=cache_dir
        )
        self.scheme = scheme
        if token_file is None:
            table = scheme_table(self.frontend.scheme)
            self.token2id = dict(table.token2id)
            self.has_tokens = True
        else:
            table = TokenTable(self.token2id)
        self.table = table
        self.pad_id = table.pad_id
        self.vocab_size = len(table)

    def texts_to_tokens(self, texts: list[str]) -> list[list[str]]:
        return [self.frontend(text) for text in texts]

    def tokens_to_token_ids(self, tokens_list: list[list[str]]) -> list[list[int]]:
        return [self.table.ids(tokens) for tokens in tokens_list]
