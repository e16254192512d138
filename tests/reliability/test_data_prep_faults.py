"""Every data-preparation binary given a corrupt, an empty, a silent and a wrong-rate file.

What each binary does with them:

* ``zipvoice.bin.prepare_dataset``, ``zipvoice.bin.compute_fbank``, ``seedsvc.bin.compute_features``:
  corrupt, empty and silent audio is left out, counted in the log and listed in the rejects
  file; audio at another rate is resampled (to 24 kHz, 24 kHz and 22.05 kHz) and prepared.
* ``seedsvc.bin.compute_content`` reads the mel that compute_features stored (its audio faults
  were rejected there): cuts whose stored mel is corrupt, empty or missing are left out and listed.
* ``zipvoice.bin.prepare_tokens`` reads text only: text that cannot be pronounced is left out and
  listed (one line per item, whatever the text holds); a corrupt or empty manifest is a one-line error.
* ``shirabe.bin.extract_f0`` prepares one file: a corrupt, empty or silent file is a one-line
  error and nothing is written; another rate is resampled.
* ``shirabe.bin.manifests`` splits and joins manifests as a whole: a corrupt or empty manifest
  is a one-line error and no part is written.

A second run of a binary keeps what the first one prepared.
"""

from __future__ import annotations

import dataclasses
import gzip
import re

import numpy as np
import pytest
import torch
from faulty_inputs import (
    BAD,
    GOOD,
    LOW_RATE,
    RATE,
    SECONDS,
    WRONG_RATE,
    make_audio,
    one_line_error,
    read_tsv,
    run,
)
from lhotse import CutSet, MonoCut, Recording, RecordingSet

from shirabe.cli import InputError

EXPECTED_KIND = {"corrupt": "unreadable audio", "empty": "empty audio file", "silent": "silent audio"}
KEPT = (*GOOD, WRONG_RATE)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    return make_audio(tmp_path_factory.mktemp("faulty_audio"))


def mtimes(*paths):
    return [p.stat().st_mtime_ns for p in paths]


# ----------------------------------------------------------------------------- zipvoice


def test_prepare_dataset_skips_and_lists_bad_audio_and_resamples_the_rest(audio, tmp_path):
    tsv = tmp_path / "corpus.tsv"
    names = [*GOOD, *BAD, WRONG_RATE]
    tsv.write_text("".join(f"{n}\tこんにちは。\t{audio[n]}\n" for n in names), encoding="utf-8")
    out = tmp_path / "manifests"
    args = ("--input", tsv, "--dataset", "t", "--subset", "train", "--output-dir", out, "--num-jobs", 1,
            "--no-progress", "true")
    r = run("zipvoice.bin.prepare_dataset", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    cuts = CutSet.from_file(out / "t_cuts_train.jsonl.gz")
    assert sorted(c.supervisions[0].id for c in cuts) == sorted(KEPT)
    for cut in cuts:
        samples = cut.load_audio()
        assert cut.sampling_rate == RATE
        assert samples.shape[1] == pytest.approx(SECONDS[cut.supervisions[0].id] * RATE, abs=2)
    recordings = {r.id: r for r in RecordingSet.from_file(out / "t_recordings_train.jsonl.gz")}
    assert recordings[WRONG_RATE].sampling_rate == LOW_RATE  # read at 8 kHz, resampled in the cut

    header, rows = read_tsv(out / "t_rejects_train.tsv")
    assert header == ["source", "line", "utt_id", "reason"]
    by_id = {row[2]: row for row in rows}
    assert sorted(by_id) == sorted(BAD)
    for name in BAD:
        assert by_id[name][1] == str(names.index(name) + 1)
        assert by_id[name][3].startswith(EXPECTED_KIND[name]), by_id[name]
    assert "rejected 3 (" in r.stderr
    assert all(f"{kind}: 1" in r.stderr for kind in EXPECTED_KIND.values()), r.stderr[-2000:]

    again = run("zipvoice.bin.prepare_dataset", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(c.supervisions[0].id for c in CutSet.from_file(out / "t_cuts_train.jsonl.gz")) == sorted(KEPT)
    assert read_tsv(out / "t_rejects_train.tsv")[1] == rows


def cut_manifest(audio, path):
    """Cuts of all six files at their own rate (the unreadable ones described like good_a)."""
    like = Recording.from_file(audio["good_a"])
    recordings = []
    for name in (*GOOD, *BAD, WRONG_RATE):
        if name in ("corrupt", "empty"):
            source = dataclasses.replace(like.sources[0], source=str(audio[name]))
            recordings.append(dataclasses.replace(like, id=name, sources=[source]))
        else:
            recordings.append(Recording.from_file(audio[name], recording_id=name))
    CutSet.from_cuts(MonoCut(id=r.id, start=0.0, duration=r.duration, channel=0, recording=r)
                     for r in recordings).to_file(path)


def test_compute_fbank_skips_and_lists_bad_audio_and_resamples_the_rest(audio, tmp_path):
    src = tmp_path / "manifests"
    src.mkdir()
    cut_manifest(audio, src / "t_cuts_train.jsonl.gz")
    out = tmp_path / "fbank"
    args = ("--manifest-dir", src, "--output-dir", out, "--dataset", "t", "--subset", "train")
    r = run("zipvoice.bin.compute_fbank", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = out / "t_cuts_train.jsonl.gz"
    cuts = CutSet.from_file(manifest)
    assert sorted(c.recording_id for c in cuts) == sorted(KEPT)
    for cut in cuts:
        feats = cut.load_features()
        assert feats.shape[1] == 100 and np.isfinite(feats).all()
        # 24 kHz, hop 256, whatever the rate of the file
        assert feats.shape[0] == pytest.approx(SECONDS[cut.recording_id] * RATE / 256, abs=2)

    rejects = out / "t_cuts_train.rejects.tsv"
    header, rows = read_tsv(rejects)
    assert header == ["id", "path", "reason"]
    assert sorted(row[0] for row in rows) == sorted(BAD)
    for name, path, reason in rows:
        assert path == str(audio[name]) and reason.startswith(EXPECTED_KIND[name]), (name, path, reason)
    assert "rejected 3 (" in r.stderr and str(rejects) in r.stderr

    before = mtimes(manifest, rejects)
    again = run("zipvoice.bin.compute_fbank", *args)
    assert again.returncode == 0 and "exists, skipping" in again.stderr, again.stderr[-2000:]
    assert mtimes(manifest, rejects) == before
    assert sorted(c.recording_id for c in CutSet.from_file(manifest)) == sorted(KEPT)


def text_cuts(texts: list[str]) -> CutSet:
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    cuts = []
    for i, text in enumerate(texts):
        c = dummy_cut(i)
        c.supervisions = [dummy_supervision(i, start=0.0, duration=1.0, text=text)]
        cuts.append(c)
    return CutSet.from_cuts(cuts)


def test_prepare_tokens_lists_untokenisable_text_one_line_each(tmp_path):
    texts = ["今日は晴れです。", "", "\t♪\n♪\r", "雨が\n降る。", "😀🎉"]
    src = tmp_path / "in.jsonl.gz"
    text_cuts(texts).to_file(src)
    out = tmp_path / "out.jsonl.gz"
    r = run("zipvoice.bin.prepare_tokens", "--input", src, "--output", out, "--num-jobs", 1)
    assert r.returncode == 0, r.stderr[-3000:]
    kept = [c.supervisions[0].text for c in CutSet.from_file(out)]
    assert kept == ["今日は晴れです。", "雨が\n降る。"]
    header, rows = read_tsv(tmp_path / "out_token_rejects.tsv")
    assert header == ["cut_id", "text", "reason"]
    assert [row[1] for row in rows] == ["", " ♪ ♪ ", "😀🎉"]
    assert all(row[2] for row in rows)
    assert "3 (" in r.stderr


def test_prepare_tokens_bad_manifest_is_a_one_line_error(tmp_path):
    from zipvoice.bin.prepare_tokens import main

    out = tmp_path / "out.jsonl.gz"
    contents = {"empty": b"", "not_gzip": b"\x00\xff" * 512, "bad_gzip": b"\x1f\x8b\x08garbage that is not gzip"}
    for name, content in contents.items():
        src = tmp_path / f"{name}.jsonl.gz"
        src.write_bytes(content)
        with pytest.raises(InputError) as info:
            main(["--input", str(src), "--output", str(out), "--num-jobs", "1"])
        assert str(info.value).startswith(f"{src}: ") and "\n" not in str(info.value), str(info.value)
    r = run("zipvoice.bin.prepare_tokens", "--input", tmp_path / "not_gzip.jsonl.gz", "--output", out)
    assert str(tmp_path / "not_gzip.jsonl.gz") in one_line_error(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.jsonl.gz" for n in contents)


# ------------------------------------------------------------------------------ seedsvc


@pytest.mark.slow
def test_seedsvc_features_then_content_skip_and_list_bad_items(audio, tmp_path):
    from seedsvc.content.phone_classifier import PhoneClassifier, save_phone_classifier

    names = [*GOOD, *BAD, WRONG_RATE]
    listing = tmp_path / "list.tsv"
    listing.write_text("utt_id\tspeaker\twav\n" + "".join(f"{n}\tspk\t{audio[n]}\n" for n in names), encoding="utf-8")
    feats = tmp_path / "feats"
    args = ("--input", listing, "--output-dir", feats, "--style-encoder", "melstats", "--device", "cpu")
    r = run("seedsvc.bin.compute_features", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    cuts_file = feats / "cuts_train.jsonl.gz"
    cuts = CutSet.from_file(cuts_file)
    assert sorted(c.id for c in cuts) == sorted(KEPT)
    for cut in cuts:  # mel frames of the 22.05 kHz audio, hop 256, whatever the rate of the file
        assert cut.load_custom("mel").shape[0] == pytest.approx(SECONDS[cut.id] * 22050 / 256, abs=2)
    header, rows = read_tsv(feats / "rejects_train.tsv")
    assert header == ["id", "path", "reason"]
    assert sorted(row[0] for row in rows) == sorted(BAD)
    kinds = {"corrupt": "cannot read audio", "empty": "empty audio file", "silent": "silent"}
    for name, path, reason in rows:
        assert path == str(audio[name]) and reason.startswith(kinds[name]), (name, path, reason)
    assert "3 (" in r.stderr

    before = mtimes(cuts_file)
    again = run("seedsvc.bin.compute_features", *args)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr[-2000:]
    assert mtimes(cuts_file) == before and read_tsv(feats / "rejects_train.tsv")[1] == rows

    # compute_content reads each cut's stored mel: three cuts whose mel file is corrupt, empty or gone
    good = cuts[[c.id for c in cuts].index("good_a")]
    mel = good.custom["mel"]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "corrupt.llc").write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    (broken / "empty.llc").write_bytes(b"")
    bad_cuts = []
    for name in ("corrupt", "empty", "missing"):
        array = dataclasses.replace(mel.array, storage_path=str(broken / f"{name}.llc"))
        bad_cuts.append(dataclasses.replace(good, id=f"mel_{name}",
                                            custom={**good.custom, "mel": dataclasses.replace(mel, array=array)}))
    mixed = feats / "cuts_mixed.jsonl.gz"
    CutSet.from_cuts([*cuts, *bad_cuts]).to_file(mixed)
    torch.manual_seed(0)
    save_phone_classifier(tmp_path / "phone.pt", PhoneClassifier(3, channels=8, num_layers=1), ["sil", "a", "i"])
    out = feats / "cuts_content.jsonl.gz"
    cargs = ("--cuts", mixed, "--output", out, "--content-checkpoint", tmp_path / "phone.pt", "--device", "cpu")
    r = run("seedsvc.bin.compute_content", *cargs)
    assert r.returncode == 0, r.stderr[-3000:]
    done = CutSet.from_file(out)
    assert sorted(c.id for c in done) == sorted(KEPT)
    for cut in done:
        assert cut.load_custom("content").shape == (cut.load_custom("mel").shape[0], 3)
    header, rows = read_tsv(feats / "cuts_content.rejects.tsv")
    assert header == ["id", "path", "reason"]
    assert sorted(row[0] for row in rows) == ["mel_corrupt", "mel_empty", "mel_missing"]
    for cut_id, path, reason in rows:
        assert path == str(broken / f"{cut_id[4:]}.llc") and reason.startswith("unreadable mel"), (path, reason)
    assert "3 (unreadable mel: 3)" in r.stderr
    before = mtimes(out)
    again = run("seedsvc.bin.compute_content", *cargs)
    assert again.returncode == 0 and "nothing to do" in again.stderr and mtimes(out) == before


# ------------------------------------------------------------------------------ shirabe


def test_extract_f0_refuses_bad_files_in_one_line_and_resamples_another_rate(audio, tmp_path):
    from shirabe.bin.extract_f0 import main

    kinds = {"corrupt": "cannot read audio", "empty": "empty audio file", "silent": "silent audio"}
    for name in BAD:
        out = tmp_path / f"{name}.f0.npy"
        with pytest.raises(InputError) as info:
            main(["--input", str(audio[name]), "--output", str(out)])
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{audio[name]}: {kinds[name]}"), message
        assert list(tmp_path.iterdir()) == []  # no output, no temporary file
    out = tmp_path / "low.f0.npy"
    assert main(["--input", str(audio[WRONG_RATE]), "--output", str(out)]) == 0
    f0 = np.load(out)
    assert len(f0) == round(SECONDS[WRONG_RATE] * 100) + 1  # 100 frames/s whatever the file's rate
    assert np.median(f0[f0 > 0]) == pytest.approx(200.0, rel=0.02)
    r = run("shirabe.bin.extract_f0", "--input", audio["corrupt"], "--output", tmp_path / "c.npy")
    assert str(audio["corrupt"]) in one_line_error(r)


def test_manifests_refuse_corrupt_or_empty_input_and_write_nothing(tmp_path):
    from shirabe.bin.manifests import main

    good = tmp_path / "good.jsonl.gz"
    text_cuts(["一", "二", "三"]).to_file(good)
    half = tmp_path / "half.jsonl.gz"
    with gzip.open(good, "rt", encoding="utf-8") as f:
        first = f.readline()
    with gzip.open(half, "wt", encoding="utf-8") as f:
        f.write(first + "{not json\n")
    bad = {"corrupt": b"\x00\xff" * 700, "empty": b""}
    for name, content in bad.items():
        (tmp_path / f"{name}.jsonl.gz").write_bytes(content)
    cases = [("corrupt", "not a readable manifest"), ("empty", "empty file (0 bytes)"),
             ("half", "not a readable manifest (item 2")]
    for name, message in cases:
        path = tmp_path / f"{name}.jsonl.gz"
        with pytest.raises(InputError, match=re.escape(message)) as info:
            main(["split", "--num-parts", "1", str(path), str(tmp_path / f"split_{name}")])
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(InputError, match=re.escape(message)):
            main(["combine", str(tmp_path / f"joined_{name}.jsonl.gz"), str(good), str(path)])
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["corrupt.jsonl.gz", "empty.jsonl.gz", "good.jsonl.gz", "half.jsonl.gz"]
    r = run("shirabe.bin.manifests", "combine", tmp_path / "j.jsonl.gz", good, tmp_path / "corrupt.jsonl.gz")
    assert str(tmp_path / "corrupt.jsonl.gz") in one_line_error(r)
