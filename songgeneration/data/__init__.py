"""Data preparation of SongGeneration: metadata, lyrics, stems, prompts and the prepared-data layout.

* :mod:`songgeneration.data.metadata`: ``metadata.jsonl`` lines → :class:`SongEntry` or a reject;
* :mod:`songgeneration.data.lyrics`: lyrics → the model's format (tags checked against its vocabulary);
* :mod:`songgeneration.data.stems`: a song as mixed, vocal and accompaniment audio at 48 kHz stereo;
* :mod:`songgeneration.data.prompt`: the 10 s style prompt cut from a song's tokens;
* :mod:`songgeneration.data.prepare`: the whole preparation (tokens, manifests, rejects; resumable).
"""

from songgeneration.data.lyrics import LyricsError, normalize_lyrics, structure_tags
from songgeneration.data.metadata import SongEntry, read_metadata
from songgeneration.data.prompt import cut_prompt

__all__ = ["LyricsError", "SongEntry", "cut_prompt", "normalize_lyrics", "read_metadata", "structure_tags"]
