"""Transcription with a local Whisper model (Hugging Face format), for CER.

``WhisperASR(model_dir)`` loads ``WhisperForConditionalGeneration`` and its
``WhisperProcessor`` (feature extractor + tokenizer) from a directory, e.g. a
Japanese Whisper fine-tune saved with ``save_pretrained``; nothing is
downloaded. ``transcribe(audio, sr)`` resamples to 16 kHz, computes Whisper's
log-mel input and decodes greedily:

* the decoder starts from ``<|startoftranscript|>``, the language token
  (``<|ja|>`` by default; left out when the tokenizer has none),
  ``<|transcribe|>`` and ``<|notimestamps|>`` (each only if the tokenizer
  knows it);
* at every step the most likely token is taken, special tokens other than
  end-of-text never being chosen; decoding stops at end-of-text or after
  ``max_new_tokens`` (at most what the decoder's positions allow);
* the key/value cache of the decoder is reused between steps.

The decoding does not depend on the model's ``generation_config`` (whose
Whisper fields vary between exports), so any Whisper checkpoint with a
tokenizer works the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from shirabe.audio.resample import resample
from shirabe.cli import InputError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


class WhisperASR:
    """Greedy Whisper transcription from a local model directory (module docstring)."""

    def __init__(self, model_dir: str | Path, language: str = "ja", device: str | torch.device = "cpu",
                 max_new_tokens: int = 128):
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise InputError(f"{model_dir}: no such ASR model directory")
        try:
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            self.processor = WhisperProcessor.from_pretrained(str(model_dir))
            self.model = WhisperForConditionalGeneration.from_pretrained(str(model_dir)).to(device).eval()
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{model_dir}: not a Whisper model directory in Hugging Face format "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from e
        self.device = torch.device(device)
        self.max_new_tokens = max_new_tokens
        limit = getattr(self.model.config, "max_target_positions", None)
        tok = self.processor.tokenizer
        if "<|endoftext|>" not in tok.get_vocab():
            raise InputError(f"{model_dir}: the tokenizer has no <|endoftext|> token (not a Whisper tokenizer)")
        self.eot = tok.get_vocab()["<|endoftext|>"]
        self.prompt = self._prompt_ids(language)
        if limit:  # the decoder's position table bounds prompt + output
            self.max_new_tokens = max(0, min(max_new_tokens, int(limit) - len(self.prompt)))
        vocab_size = self.model.config.vocab_size
        suppress = {i for i in tok.added_tokens_decoder if i < vocab_size} | set(tok.all_special_ids)
        suppress.discard(self.eot)
        self.suppress = torch.tensor(sorted(i for i in suppress if i < vocab_size), dtype=torch.long)

    def _prompt_ids(self, language: str | None) -> list[int]:
        vocab = self.processor.tokenizer.get_vocab()
        if "<|startoftranscript|>" not in vocab:
            raise InputError("the ASR tokenizer has no <|startoftranscript|> token (not a Whisper tokenizer)")
        names = ["<|startoftranscript|>"]
        if language:
            lang = f"<|{language}|>"
            if lang in vocab:
                names.append(lang)
            else:
                logger.warning("the ASR tokenizer has no %s token: decoding without a language token", lang)
        names += [n for n in ("<|transcribe|>", "<|notimestamps|>") if n in vocab]
        return [vocab[n] for n in names]

    def features(self, audio, sr: int) -> torch.Tensor:
        """Whisper's log-mel input ``(1, mels, 3000)`` of mono ``audio`` at ``sr``."""
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        wav16 = resample(audio, int(sr), SAMPLE_RATE) if int(sr) != SAMPLE_RATE else audio
        fe = self.processor.feature_extractor
        return fe(wav16, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features.to(self.device)

    @torch.no_grad()
    def decode_ids(self, features: torch.Tensor) -> list[int]:
        """Greedy token ids after the prompt (end-of-text excluded)."""
        encoder_outputs = self.model.get_encoder()(features)
        inputs = torch.tensor([self.prompt], device=self.device)
        past, out = None, []
        for _ in range(self.max_new_tokens):
            step = self.model(encoder_outputs=encoder_outputs, decoder_input_ids=inputs, past_key_values=past,
                              use_cache=True)
            past = step.past_key_values
            logits = step.logits[0, -1].float()
            logits[self.suppress.to(logits.device)] = -float("inf")
            token = int(logits.argmax())
            if token == self.eot:
                break
            out.append(token)
            inputs = torch.tensor([[token]], device=self.device)
        return out

    def transcribe(self, audio, sr: int) -> str:
        """Text of mono ``audio`` sampled at ``sr``."""
        ids = self.decode_ids(self.features(audio, sr))
        return self.processor.tokenizer.decode(ids, skip_special_tokens=True).strip()
