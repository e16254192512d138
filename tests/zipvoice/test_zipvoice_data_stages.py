"""Recipe data binaries: compute_fbank (whole and in JOB parts) and prepare_tokens."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from lhotse import CutSet

from shirabe.audio import load_audio, save_audio
from shirabe.audio.mel import vocos_mel
from shirabe.text import JapaneseFrontend

TEXTS = ["今日は晴れです。", "雨が降りそうだ。", "箸が折れた。", "橋を渡る。", "ｈｅｌｌｏ、世界！"]


def run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    """prepare_dataset output for 5 utterances at 16 kHz (so compute_fbank must resample)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    lines = []
    for i, text in enumerate(TEXTS):
        t = np.arange(int(16000 * (0.6 + 0.2 * i))) / 16000
        x = 0.3 * np.sin(2 * np.pi * (150 + 30 * i) * t) + 0.01 * rng.standard_normal(t.size)
        save_audio(root / f"spk_{i}.wav", x.astype(np.float32), 16000)
        lines.append(f"spk_{i}\t{text}\t{root / f'spk_{i}.wav'}")
    (root / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("zipvoice.bin.prepare_dataset", "--no-progress", "true", "--input", root / "train.tsv", "--dataset", "t",
            "--subset", "train", "--output-dir", root / "manifests", "--sampling-rate", "16000")
    assert r.returncode == 0, r.stderr
    return root


def test_fbank_matches_the_vocos_mel_of_the_resampled_audio(manifests, tmp_path):
    r = run("zipvoice.bin.compute_fbank", "--manifest-dir", manifests / "manifests", "--output-dir", tmp_path,
            "--dataset", "t", "--subset", "train")
    assert r.returncode == 0, r.stderr
    cuts = CutSet.from_file(tmp_path / "t_cuts_train.jsonl.gz")
    assert len(cuts) == len(TEXTS)
    for cut in cuts:
        assert cut.sampling_rate == 24000 and cut.has_features and cut.num_features == 100
        feats = cut.load_features()
        audio, sr = load_audio(cut.recording.sources[0].source, sr=24000)
        ref = vocos_mel(torch.from_numpy(np.asarray(audio, np.float32)).reshape(1, -1), 24000, 1024, 256, 100)[0].T.numpy()
        n = min(len(ref), len(feats))
        assert abs(len(ref) - len(feats)) <= 1 and feats.shape[0] == cut.num_frames
        # lilcom storage is lossy (~0.1 % of the range); resampling differs slightly between libraries
        assert np.median(np.abs(feats[:n] - ref[:n])) < 0.05
    again = run("zipvoice.bin.compute_fbank", "--manifest-dir", manifests / "manifests", "--output-dir", tmp_path,
                "--dataset", "t", "--subset", "train")
    assert again.returncode == 0 and "exists, skipping" in again.stderr


def test_fbank_in_parts_equals_the_whole(manifests, tmp_path):
    src = manifests / "manifests"
    whole = run("zipvoice.bin.compute_fbank", "--manifest-dir", src, "--output-dir", tmp_path / "whole",
                "--dataset", "t", "--subset", "train")
    assert whole.returncode == 0, whole.stderr
    r = run("shirabe.bin.manifests", "split", "--num-parts", "2", src / "t_cuts_train.jsonl.gz", src / "split2")
    assert r.returncode == 0, r.stderr
    for job in (1, 2):
        r = run("zipvoice.bin.compute_fbank", "--manifest-dir", src, "--output-dir", tmp_path / "parts",
                "--dataset", "t", "--subset", "train", "--num-parts", "2", "--part", job)
        assert r.returncode == 0, r.stderr
    parts = [tmp_path / "parts" / "split2" / f"t_cuts_train.{j}.jsonl.gz" for j in (1, 2)]
    r = run("shirabe.bin.manifests", "combine", tmp_path / "joined.jsonl.gz", *parts)
    assert r.returncode == 0, r.stderr
    a = {c.id: c.load_features() for c in CutSet.from_file(tmp_path / "whole" / "t_cuts_train.jsonl.gz")}
    b = {c.id: c.load_features() for c in CutSet.from_file(tmp_path / "joined.jsonl.gz")}
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_fbank_bad_arguments_fail_in_one_line(manifests, tmp_path):
    r = run("zipvoice.bin.compute_fbank", "--manifest-dir", tmp_path, "--dataset", "t")
    assert r.returncode == 2 and "no such manifest" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("zipvoice.bin.compute_fbank", "--manifest-dir", manifests / "manifests", "--dataset", "t",
            "--num-parts", "2", "--part", "3")
    assert r.returncode == 2 and "--part must be in 1..2" in r.stderr


def test_prepare_tokens_stores_the_frontend_tokens(manifests, tmp_path):
    table = tmp_path / "tokens.txt"
    r = run("zipvoice.bin.prepare_token_file", "--tokenizer", "japanese", "--scheme", "prosody", "--output", table)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "tok.jsonl.gz"
    r = run("zipvoice.bin.prepare_tokens", "--input", manifests / "manifests" / "t_cuts_train.jsonl.gz",
            "--output", out, "--token-file", table, "--num-jobs", "1")
    assert r.returncode == 0, r.stderr
    frontend = JapaneseFrontend("prosody")
    cuts = CutSet.from_file(out)
    assert len(cuts) == len(TEXTS)
    for cut in cuts:
        sup = cut.supervisions[0]
        assert sup.custom["tokens"] == frontend(sup.text)


def test_prepare_tokens_leaves_out_and_lists_untokenisable_text(tmp_path):
    from lhotse.testing.dummies import dummy_cut, dummy_supervision

    cuts = []
    for i, text in enumerate(["猫が鳴く。", "", "♪♪♪"]):
        c = dummy_cut(i)
        c.supervisions = [dummy_supervision(i, start=0.0, duration=1.0, text=text)]
        cuts.append(c)
    src = tmp_path / "in.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(src)
    r = run("zipvoice.bin.prepare_tokens", "--input", src, "--output", tmp_path / "out.jsonl.gz", "--num-jobs", "1")
    assert r.returncode == 0, r.stderr
    kept = CutSet.from_file(tmp_path / "out.jsonl.gz")
    assert [c.supervisions[0].text for c in kept] == ["猫が鳴く。"]
    rejects = (tmp_path / "out_token_rejects.tsv").read_text(encoding="utf-8").splitlines()
    assert rejects[0] == "cut_id\ttext\treason" and len(rejects) == 3


def test_prepare_tokens_strict_table_check(manifests, tmp_path):
    table = tmp_path / "small.txt"
    table.write_text("_\t0\na\t1\n", encoding="utf-8")
    r = run("zipvoice.bin.prepare_tokens", "--input", manifests / "manifests" / "t_cuts_train.jsonl.gz",
            "--output", tmp_path / "o.jsonl.gz", "--token-file", table, "--strict", "true", "--num-jobs", "1")
    assert r.returncode == 2 and "not in" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.jsonl.gz").exists()
