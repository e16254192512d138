"""train_vq, extract_features and recover_codebook on small songs with the fixture MuQ and VAE."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from songbloom.bin import extract_features, recover_codebook, train_vq
from songbloom.features import sketch_at_latent_rate
from songbloom.sketch import Codebook

FIXTURES = Path(os.environ.get("SHIRABE_FIXTURES", Path(__file__).resolve().parents[1] / "fixtures"))
MUQ = FIXTURES / "muq_tiny"
VAE = FIXTURES / "oobleck_vae_tiny"
SR = 48000


def melody(seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    notes = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4)) / 12)
    f = np.repeat(notes, int(SR / 4))[: len(t)]
    return (0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    d = tmp_path_factory.mktemp("songs")
    recs, sups = [], []
    for name, audio in [("a", melody(3.0, 1)), ("b", melody(2.5, 2)), ("c", melody(3.0, 3)),
                        ("silent", np.zeros(SR * 2, np.float32)), ("short", melody(0.5, 4))]:
        sf.write(d / f"{name}.wav", audio, SR)
        sf.write(d / f"{name}_prompt.wav", audio[: SR], SR)
        rec = Recording.from_file(d / f"{name}.wav", recording_id=name)
        recs.append(rec)
        sups.append(SupervisionSegment(id=name, recording_id=name, start=0, duration=rec.duration, text="[verse] a",
                                       custom={"prompt_wav": str(d / f"{name}_prompt.wav")}))
    RecordingSet.from_recordings(recs).to_file(d / "recordings_train.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(d / "supervisions_train.jsonl.gz")
    return d


def test_sketch_ids_follow_the_latent_rate():
    ids = torch.tensor([3, 1, 2])
    assert sketch_at_latent_rate(ids, 25.0).tolist() == [3, 1, 2]
    assert sketch_at_latent_rate(ids, 50.0).tolist() == [3, 3, 1, 1, 2, 2]
    assert len(sketch_at_latent_rate(ids, 6000.0)) == 720


@pytest.fixture(scope="module")
def codebook(songs):
    out = songs / "vq" / "codebook.pt"
    assert train_vq.main(["--manifest", str(songs / "recordings_train.jsonl.gz"), "--muq-dir", str(MUQ),
                          "--output", str(out), "--codebook-size", "8", "--steps", "40", "--batch-size", "64",
                          "--init-sample", "200", "--progress", "false"]) == 0
    return out


def test_train_vq_writes_a_codebook_and_report(codebook):
    cb = Codebook.load(codebook)
    depth = json.loads((MUQ / "config.json").read_text())["encoder_depth"]
    assert cb.size == 8 and cb.muq_layer == depth and cb.source == "kmeans"
    report = json.loads(codebook.with_suffix(".json").read_text())
    assert report["codes_used"] >= 4 and report["songs"] == 5  # every readable song gives frames
    assert 1.0 < report["final_perplexity"] <= 8.0


def test_extract_features_stores_aligned_arrays_and_lists_rejects(songs, codebook, tmp_path):
    out = tmp_path / "feats"
    args = ["--manifest", str(songs / "recordings_train.jsonl.gz"), "--output-dir", str(out),
            "--vae-config", str(VAE / "vae.json"), "--vae-ckpt", str(VAE / "vae.ckpt"), "--muq-dir", str(MUQ),
            "--codebook", str(codebook), "--progress", "false"]
    assert extract_features.main(args) == 0
    cuts = CutSet.from_file(out / "cuts_train.jsonl.gz")
    assert sorted(c.id for c in cuts) == ["a", "b", "c"]
    rejects = (out / "rejects_train.tsv").read_text().splitlines()
    assert {r.split("\t")[0]: r.split("\t")[2].split(":")[0] for r in rejects[1:]} == \
        {"silent": "silent audio", "short": "too short"}
    vae_cfg = json.loads((VAE / "vae.json").read_text())
    ratio = vae_cfg["model"]["downsampling_ratio"]
    for cut in cuts:
        latent, sketch, prompt = cut.load_custom("latent"), cut.load_custom("sketch"), cut.load_custom("prompt_latent")
        n = cut.recording.num_samples
        assert latent.shape == (vae_cfg["model"]["latent_dim"], n // ratio)
        assert sketch.shape == (latent.shape[1],) and sketch.dtype == np.int64 and 0 <= sketch.min() <= sketch.max() < 8
        assert prompt.shape == (vae_cfg["model"]["latent_dim"], SR // ratio)
        assert cut.supervisions[0].text == "[verse] a"


def test_extract_features_resumes_and_splits_into_parts(songs, tmp_path):
    out = tmp_path / "feats"
    base = ["--manifest", str(songs / "recordings_train.jsonl.gz"), "--output-dir", str(out),
            "--vae-config", str(VAE / "vae.json"), "--vae-ckpt", str(VAE / "vae.ckpt"), "--progress", "false"]
    assert extract_features.main([*base, "--part", "1", "--num-parts", "2"]) == 0
    first = CutSet.from_file(out / "cuts_train.1.jsonl.gz")
    assert {c.id for c in first} == {"a", "c"}  # songs 0, 2 and 4 (short, rejected)
    before = {p: p.stat().st_mtime_ns for p in (out / "storage_train").rglob("*.npy")}
    partial = out / ".cuts_train.2.partial.jsonl"
    assert extract_features.main([*base, "--part", "2", "--num-parts", "2"]) == 0
    second = CutSet.from_file(out / "cuts_train.2.jsonl.gz")
    assert {c.id for c in second} == {"b"} and not partial.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert "sketch" not in next(iter(second)).custom  # no codebook: latents only


def test_extract_features_resume_skips_recorded_songs(songs, tmp_path, monkeypatch):
    out = tmp_path / "feats"
    base = ["--manifest", str(songs / "recordings_train.jsonl.gz"), "--output-dir", str(out),
            "--vae-config", str(VAE / "vae.json"), "--vae-ckpt", str(VAE / "vae.ckpt"), "--progress", "false"]
    calls = []
    real = extract_features.FeatureExtractor.__call__

    def failing(self, audio, *a, **k):
        calls.append(len(audio))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job is killed while the second song runs
        return real(self, audio, *a, **k)

    monkeypatch.setattr(extract_features.FeatureExtractor, "__call__", failing)
    with pytest.raises(KeyboardInterrupt):
        extract_features.main(base)
    assert len((out / ".cuts_train.partial.jsonl").read_text().splitlines()) == 1
    counted = []
    monkeypatch.setattr(extract_features.FeatureExtractor, "__call__",
                        lambda self, audio, *a, **k: counted.append(1) or real(self, audio, *a, **k))
    assert extract_features.main(base) == 0
    assert len(counted) == 2  # b and c; a is not redone (silent and short are rejected before)
    assert sorted(c.id for c in CutSet.from_file(out / "cuts_train.jsonl.gz")) == ["a", "b", "c"]


def test_recover_codebook_runs_on_generated_songs(songs, codebook, tmp_path):
    # stand-in "generated" songs whose ids are the trained codebook's own quantisation: recovery
    # must pick that codebook's layer and agree with it on held-out songs
    from shirabe.audio import load_audio
    from shirabe.ssl import encode, load_muq

    cb = Codebook.load(codebook)
    muq = load_muq(MUQ)
    lines = []
    for name in ("a", "b", "c", "silent"):
        audio, sr = load_audio(songs / f"{name}.wav")
        ids = cb.quantize(encode(muq, audio, sr, layers=cb.muq_layer)).numpy()
        np.save(tmp_path / f"{name}.npy", ids)
        lines.append(json.dumps({"audio": str(songs / f"{name}.wav"), "sketch": f"{name}.npy"}))
    (tmp_path / "songs.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "recovered.pt"
    assert recover_codebook.main(["--songs", str(tmp_path / "songs.jsonl"), "--muq-dir", str(MUQ), "--output",
                                  str(out), "--codebook-size", "8", "--heldout-fraction", "0.25"]) == 0
    rec = Codebook.load(out)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert rec.source == "recovered" and rec.size == 8
    by_layer = {r["layer"]: r for r in summary["layers"]}
    assert rec.muq_layer == cb.muq_layer and by_layer[cb.muq_layer]["agreement"] > 0.8
    counts = (tmp_path / "recovered.counts.tsv").read_text().splitlines()
    assert counts[0] == "id\tframes\tknown" and len(counts) == 9


def test_recover_codebook_names_a_bad_line(tmp_path):
    (tmp_path / "songs.jsonl").write_text('{"audio": "x.wav"}\n{"audio": "y.wav", "sketch": "y.npy"}\n')
    with pytest.raises(Exception, match=r"songs.jsonl:1: field 'audio': no such file"):
        recover_codebook.read_songs(tmp_path / "songs.jsonl")
