"""Reading the song manifests the preparation writes, as one lhotse CutSet.

A manifest argument may be a CutSet, or a RecordingSet whose supervisions sit
beside it under the same name with ``recordings`` replaced by ``supervisions``
(``recordings_train.jsonl.gz`` + ``supervisions_train.jsonl.gz``); a
RecordingSet without them gives cuts without supervisions. Cuts made from
recordings take the recording's id.
"""

from __future__ import annotations

from pathlib import Path

from lhotse import CutSet, RecordingSet, SupervisionSet, load_manifest

from shirabe.cli import InputError


def load_song_cuts(path: str | Path) -> CutSet:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest")
    try:
        manifest = load_manifest(path)
    except Exception as e:  # lhotse raises plain exceptions for files it cannot parse
        raise InputError(f"{path}: not a lhotse manifest ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(manifest, CutSet):
        return manifest
    if isinstance(manifest, RecordingSet):
        sup_path = path.with_name(path.name.replace("recordings", "supervisions"))
        supervisions = None
        if sup_path != path and sup_path.is_file():
            supervisions = load_manifest(sup_path)
            if not isinstance(supervisions, SupervisionSet):
                raise InputError(f"{sup_path}: expected a SupervisionSet")
        cuts = CutSet.from_manifests(recordings=manifest, supervisions=supervisions)
        return CutSet.from_cuts(c.with_id(c.recording_id) for c in cuts)  # one cut per song, named by it
    raise InputError(f"{path}: expected a CutSet or a RecordingSet, got a {type(manifest).__name__}")
