"""ACE-Step v1 sampling: guidance, attention-temperature (ERG) hooks, task start points, the denoising loop.

- :mod:`acestep.sampling.guidance`: CFG, APG (momentum buffer, norm clip, projection), CFG-zero*,
  double-condition CFG, the guidance step window and its linear decay.
- :mod:`acestep.sampling.erg`: context managers that scale query projections (ERG).
- :mod:`acestep.sampling.tasks`: noise draws and start points for text2music, audio2audio, retake,
  repaint and extend.
- :mod:`acestep.sampling.loop`: :func:`~acestep.sampling.loop.denoise`, the Euler loop with guidance.
"""
