"""Splitting manifests into JOB parts and joining them back (shirabe.data.splits, shirabe.bin.manifests)."""

import subprocess
import sys

import pytest
from lhotse import CutSet
from lhotse.testing.dummies import dummy_cut

from shirabe.cli import InputError
from shirabe.data.splits import combine_manifests, part_paths, split_manifest


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "x_cuts_train.jsonl.gz"
    CutSet.from_cuts(dummy_cut(i) for i in range(11)).to_file(path)
    return path


def ids(path):
    return [c.id for c in CutSet.from_file(path)]


def test_split_is_contiguous_one_based_and_balanced(manifest, tmp_path):
    parts = split_manifest(manifest, tmp_path / "split4", 4)
    assert [p.name for p in parts] == [f"x_cuts_train.{j}.jsonl.gz" for j in (1, 2, 3, 4)]
    assert parts == part_paths(manifest, tmp_path / "split4", 4)
    sizes = [len(ids(p)) for p in parts]
    assert sizes == [3, 3, 3, 2]
    assert sum((ids(p) for p in parts), []) == ids(manifest)
    assert not list((tmp_path / "split4").glob(".tmp.*"))


def test_split_is_not_redone_when_parts_are_newer(manifest, tmp_path):
    parts = split_manifest(manifest, tmp_path / "s", 2)
    stamps = [p.stat().st_mtime_ns for p in parts]
    split_manifest(manifest, tmp_path / "s", 2)
    assert [p.stat().st_mtime_ns for p in parts] == stamps


def test_combine_restores_the_manifest(manifest, tmp_path):
    parts = split_manifest(manifest, tmp_path / "s", 3)
    assert combine_manifests(parts, tmp_path / "joined.jsonl.gz") == 11
    assert ids(tmp_path / "joined.jsonl.gz") == ids(manifest)


def test_errors_name_the_file(manifest, tmp_path):
    with pytest.raises(InputError, match="12 parts"):
        split_manifest(manifest, tmp_path / "s", 12)
    with pytest.raises(InputError, match="no such manifest"):
        split_manifest(tmp_path / "nope.jsonl.gz", tmp_path / "s", 2)
    with pytest.raises(InputError, match="missing"):
        combine_manifests([tmp_path / "a.1.jsonl.gz"], tmp_path / "out.jsonl.gz")


def test_cli_orders_parts_by_job_number(manifest, tmp_path):
    cli = [sys.executable, "-m", "shirabe.bin.manifests"]
    r = subprocess.run([*cli, "split", "--num-parts", "11", str(manifest), str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    parts = sorted((tmp_path / "s").glob("*.jsonl.gz"))  # lexical: 1, 10, 11, 2, ...
    r = subprocess.run([*cli, "combine", str(tmp_path / "j.jsonl.gz"), *map(str, parts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ids(tmp_path / "j.jsonl.gz") == ids(manifest)
    r = subprocess.run([*cli, "split", "--num-parts", "0", str(manifest), str(tmp_path / "t")], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "parts must be >= 1" in r.stderr
