"""An offline phone recognizer: the judge of whether audio says the phones of a text.

A small CTC model (:mod:`shirabe.asr.model`) over the Vocos log-mel fbank
(:mod:`shirabe.asr.features`), trained on the mini speech corpus by
``python -m shirabe.bin.train_phone_recognizer`` and applied by
``python -m shirabe.bin.score_phones`` or :func:`score`, which gives the phone
error rate (:mod:`shirabe.asr.per`) of recordings against their texts'
reference phones (:mod:`shirabe.asr.phones`). See docs/phone_recognizer.md.
"""

from shirabe.asr.per import EditCounts, edit_counts
from shirabe.asr.phones import UnknownPhoneError
from shirabe.asr.recognizer import PhoneRecognizer, load_recognizer, save_recognizer
from shirabe.asr.scoring import ItemScore, PERDetails, score

__all__ = [
    "EditCounts",
    "ItemScore",
    "PERDetails",
    "PhoneRecognizer",
    "UnknownPhoneError",
    "edit_counts",
    "load_recognizer",
    "save_recognizer",
    "score",
]
