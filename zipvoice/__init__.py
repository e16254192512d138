"""ZipVoice-compatible zero-shot TTS: models, tokenizers, binaries."""
