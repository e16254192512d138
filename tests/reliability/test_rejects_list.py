"""shirabe.data.rejects: the list of left-out items every data-preparation binary writes."""

from pathlib import Path

import pytest

from shirabe.data.rejects import Rejects, reason_kind, reason_of, rejects_path


def test_rows_are_one_line_each_and_counted_by_kind(tmp_path):
    rejects = Rejects()
    rejects.add("a", "/x/a.wav", "unreadable audio: Format not recognised")
    rejects.add("b\tc", "/x/b\n.wav", "silent audio")
    rejects.add("d", "/x/d.wav", "unreadable audio: Truncated\r\nfile")
    rejects.add("e", "/x/e.wav", "cannot read audio (Error opening: x)")
    assert len(rejects) == 4
    assert rejects.summary() == "4 (unreadable audio: 2, silent audio: 1, cannot read audio: 1)"
    path = rejects.write(tmp_path / "sub" / "out.rejects.tsv")
    assert path.read_text(encoding="utf-8") == (
        "id\tpath\treason\n"
        "a\t/x/a.wav\tunreadable audio: Format not recognised\n"
        "b c\t/x/b .wav\tsilent audio\n"
        "d\t/x/d.wav\tunreadable audio: Truncated  file\n"
        "e\t/x/e.wav\tcannot read audio (Error opening: x)\n"
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.rejects.tsv"]  # no temporary file left
    with pytest.raises(ValueError, match="expected 3 fields"):
        rejects.add("only", "two")


def test_empty_list_has_a_header_and_summary_zero(tmp_path):
    rejects = Rejects(("cut_id", "text", "reason"))
    assert rejects.summary() == "0"
    assert rejects.write(tmp_path / "r.tsv").read_text(encoding="utf-8") == "cut_id\ttext\treason\n"


def test_reason_helpers():
    assert reason_kind("too short: 0.05s < 0.1s") == "too short"
    assert reason_kind("silent (peak below 0.0001)") == "silent"
    assert reason_of(ValueError("/d/x.wav: empty audio file (0 bytes)"), Path("/d/x.wav")) == "empty audio file (0 bytes)"
    assert reason_of(ValueError("first line\nsecond line")) == "first line"
    assert reason_of(KeyError()) == "KeyError"
    assert rejects_path("/d/t_cuts_train.jsonl.gz") == Path("/d/t_cuts_train.rejects.tsv")
    assert rejects_path("out.jsonl") == Path("out.rejects.tsv")
