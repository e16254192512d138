"""Evaluation of generated songs (``python -m songbloom.bin.evaluate``; docs/songbloom_evaluation.md).

* :mod:`songbloom.eval.sung_corpus`: a song's lead vocal cut into phrase clips at the
  score's rests, the training data of a phone recognizer for singing
  (``python -m songbloom.bin.prepare_sung_phone_corpus``);
* :mod:`songbloom.eval.metrics`: small pure metrics (cosine of mean-pooled features,
  Gaussian statistics and the Fréchet distance, duration against a budget);
* :mod:`songbloom.eval.structure`: a frame-level vocal activity detector and the
  adherence of a song to its lyric's sections;
* :mod:`songbloom.eval.lyrics`: what the lyrics say (sung text, per-section symbol counts);
* :mod:`songbloom.eval.windows`: long songs cut at quiet frames for the recognizers;
* :mod:`songbloom.eval.inputs`: the songs to score, their generated samples, references and
  the training side's dev metrics;
* :mod:`songbloom.eval.scorer`: every metric of one recording (a sample or the ground truth);
* :mod:`songbloom.eval.tables`: means over the samples and the summary table.
"""
