"""Running a builder's independent jobs on a few threads, with a progress bar.

The heavy work of the song parts (WORLD analysis and synthesis, fluidsynth)
releases the GIL, so two threads use two cores. Jobs must not depend on each
other's order; the voice engines serialise themselves (see
:mod:`shirabe.minicorpus.singing`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm import tqdm

WORKERS = max(1, min(2, os.cpu_count() or 1))


def run_jobs(jobs: Sequence[Callable[[], object]], desc: str, unit: str, progress: bool = True) -> None:
    """Run every job; the first exception cancels the jobs not yet started and is raised."""
    with tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress) as bar:
        with ThreadPoolExecutor(WORKERS) as pool:
            futures = [pool.submit(job) for job in jobs]
            try:
                for future in as_completed(futures):
                    future.result()
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
