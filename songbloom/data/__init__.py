"""Song corpora for SongBloom: lyrics from scores, text or ASR, style prompts, lhotse manifests.

* :mod:`songbloom.data.musicxml` reads a MusicXML score into timed notes per part;
  :mod:`songbloom.data.lead` picks the lead-vocal part;
* :mod:`songbloom.data.structure` maps rehearsal marks and section words to
  SongBloom's structure tags; :mod:`songbloom.data.phrases` turns the lead's
  syllables and rests into lyrics with phrase punctuation;
* :mod:`songbloom.data.lyrics` reads and writes SongBloom's lyric strings
  (tags, ``.`` and ``,``, text); :mod:`songbloom.data.japanese` cleans text down
  to Japanese;
* :mod:`songbloom.data.prompt` chooses the 10 s style prompt by frame energy;
* :mod:`songbloom.data.corpus` checks each song and writes the corpus (manifests,
  inference JSONL, reports); :mod:`songbloom.data.jacappella` and
  :mod:`songbloom.data.custom` list the songs of jaCappella and of a custom
  folder or JSONL; :mod:`songbloom.data.transcribe` writes lyrics with Whisper.
"""
