"""Text and lyrics for ACE-Step: the UMT5 prompt encoder and the lyric tokenizer (Japanese via readings)."""
