"""Shared implementation of ``utils/run.pl``, ``utils/queue.pl`` and ``utils/slurm.pl``.

All three take the Kaldi calling convention::

    <prog> [options] [JOB=1:N] log/foo.JOB.log program args...

Modules:

- :mod:`parallel.cmdline`: parsing that convention, JOB substitution, shell quoting.
- :mod:`parallel.logs`: the log header/footer format and reading a task's final status.
- :mod:`parallel.report`: the summary printed when tasks fail.
- :mod:`parallel.local`: ``run.pl``, tasks forked on this machine.
- :mod:`parallel.config`: ``conf/queue.conf``-style files mapping ``--name value`` options to
  scheduler flags.
- :mod:`parallel.grid`: what the cluster backends share (job script, submission, waiting).
- :mod:`parallel.sge`, :mod:`parallel.slurm`: the GridEngine and Slurm specifics.

Only the Python standard library is used, so cluster nodes need nothing installed.
"""
