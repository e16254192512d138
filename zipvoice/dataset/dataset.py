"""A sampled CutSet → one ZipVoice training batch.

Every cut must have precomputed features (``cut.load_features()`` → ``(T,
100)`` Vocos log-mel) and exactly one supervision. Its tokens are
``supervision.custom["tokens"]`` (a list of token strings written at
preparation time); a cut without them is tokenized on the fly from
``supervision.text`` with the configured tokenizer (slower: a warning says so
once). Tokens map to ids through ``tokens.txt``; tokens missing from it are
dropped, each distinct one logged once, and a cut left with no token at all is
dropped from its batch with a warning.

A batch is a dict::

    features       (B, T, 100) float32 log-mel, padded (lhotse's feature padding)
    features_lens  (B,) int64 frame counts
    tokens         list of B lists of token ids
    cut_ids        list of B cut ids
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import torch
from lhotse import CutSet
from lhotse.dataset.collation import collate_features

from shirabe.cli import InputError
from zipvoice.tokenizer.token_table import read_token_table

logger = logging.getLogger(__name__)


class TokenMapper:
    """Token ids of a cut, from stored token strings or an on-the-fly tokenizer."""

    def __init__(self, token_file: str | Path, tokenizer: str | None = None, lang: str = "en-us"):
        self.token_file = Path(token_file)
        self.token2id = read_token_table(self.token_file)
        self.tokenizer_name = tokenizer
        self.lang = lang
        self._tokenizer = None
        self.oov_counts: Counter = Counter()
        self.num_tokenized = 0

    def __getstate__(self):  # tokenizers may hold unpicklable handles: rebuild in each worker
        state = dict(self.__dict__)
        state["_tokenizer"] = None
        return state

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from zipvoice.tokenizer import get_tokenizer

            self._tokenizer = get_tokenizer(self.tokenizer_name, self.token_file, lang=self.lang)
        return self._tokenizer

    def tokens(self, cut) -> list[str]:
        """Token strings of ``cut``'s (single) supervision."""
        sup = cut.supervisions[0]
        tokens = (sup.custom or {}).get("tokens")
        if tokens is not None:
            if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
                raise InputError(f"cut {cut.id}: supervision.custom['tokens'] must be a list of token strings")
            return list(tokens)
        if self.tokenizer_name is None:
            raise InputError(f"cut {cut.id}: its supervision has no 'tokens' and no tokenizer was given")
        if self.num_tokenized == 0:
            logger.warning(
                "cut %s has no stored tokens: tokenizing on the fly with the %s tokenizer "
                "(slow; store supervision.custom['tokens'] when preparing the data)", cut.id, self.tokenizer_name
            )
        self.num_tokenized += 1
        return self.tokenizer.texts_to_tokens([sup.text or ""])[0]

    def ids(self, cut) -> list[int]:
        """Token ids of ``cut``; tokens missing from the table are dropped (logged once each)."""
        out = []
        for tok in self.tokens(cut):
            idx = self.token2id.get(tok)
            if idx is None:
                if tok not in self.oov_counts:
                    logger.warning("token %r (cut %s) is not in %s; dropped", tok, cut.id, self.token_file)
                self.oov_counts[tok] += 1
                continue
            out.append(idx)
        return out


class ZipVoiceDataset(torch.utils.data.Dataset):
    """Map-style dataset whose "index" is a CutSet chosen by a lhotse sampler."""

    def __init__(self, token_mapper: TokenMapper):
        super().__init__()
        self.token_mapper = token_mapper

    def __getitem__(self, cuts: CutSet) -> dict:
        kept, tokens = [], []
        for cut in cuts:
            if len(cut.supervisions) != 1:
                raise InputError(f"cut {cut.id}: has {len(cut.supervisions)} supervisions, expected exactly one")
            if not cut.has_features:
                raise InputError(f"cut {cut.id}: has no precomputed features")
            ids = self.token_mapper.ids(cut)
            if not ids:
                logger.warning("cut %s has no known token; left out of its batch", cut.id)
                continue
            kept.append(cut)
            tokens.append(ids)
        if not kept:
            raise InputError(f"no cut of a batch has a known token (cuts: {', '.join(c.id for c in cuts)})")
        cuts = CutSet.from_cuts(kept)
        features, features_lens = collate_features(cuts)
        return {
            "features": features,
            "features_lens": features_lens.to(torch.int64),
            "tokens": tokens,
            "cut_ids": [c.id for c in cuts],
        }
