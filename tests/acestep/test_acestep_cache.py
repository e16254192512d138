"""acestep.bin.cache_latents: seed-file songs → cached latents, prompt states and lyric ids; resumption; rejects."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from acestep_testlib import make_tiny_checkpoint  # noqa: E402

from acestep.bin import cache_latents  # noqa: E402
from shirabe.cli import InputError  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TAGS = ["pop", "piano", "female vocal"]
LYRICS = "[verse]\nhello world\n\n[chorus]\nsing along\n"


def tone(seconds: float, sr: int, freq: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    noise = np.random.default_rng(seed).standard_normal(t.shape)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * noise).astype(np.float32)


def write_songs(data: Path) -> None:
    """Three good songs (stereo wav 44.1 kHz, mono flac 48 kHz, 4 s wav without lyrics) and four bad ones."""
    data.mkdir(parents=True)
    left = tone(2.0, 44100, 220, 0)
    sf.write(data / "alpha.wav", np.stack([left, 0.5 * left], axis=1), 44100)
    sf.write(data / "bravo.flac", tone(2.0, 48000, 330, 1), 48000)
    sf.write(data / "charlie.wav", tone(4.0, 48000, 440, 2), 48000)
    for key in ("alpha", "bravo", "charlie"):
        (data / f"{key}_prompt.txt").write_text(", ".join(TAGS), encoding="utf-8")
    for key in ("alpha", "bravo"):
        (data / f"{key}_lyrics.txt").write_text(LYRICS, encoding="utf-8")
    (data / "broken.wav").write_bytes(b"RIFF but not really a wav file")
    (data / "broken_prompt.txt").write_text("rock", encoding="utf-8")
    (data / "empty.flac").write_bytes(b"")
    (data / "empty_prompt.txt").write_text("rock", encoding="utf-8")
    sf.write(data / "noprompt.wav", tone(2.0, 48000, 500, 3), 48000)
    sf.write(data / "badlyrics.wav", tone(2.0, 48000, 550, 4), 48000)
    (data / "badlyrics_prompt.txt").write_text("rock", encoding="utf-8")
    (data / "badlyrics_lyrics.txt").write_text("[verse]\nhello \U0001F3B5 world\n", encoding="utf-8")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("acestep_cache")
    ckpt = make_tiny_checkpoint(root / "ckpt")
    write_songs(root / "data")
    out = root / "cache"
    assert cache_latents.main(cache_args(ckpt, root / "data", out)) == 0
    return ckpt, root / "data", out


def cache_args(ckpt, data, out, *extra):
    return ["--checkpoint-dir", str(ckpt), "--data-dir", str(data), "--output-dir", str(out), "--device", "cpu",
            "--num-tag-orders", "2", "--progress", "false", *extra]


def cuts_by_id(out: Path) -> dict:
    return {c.id: c for c in CutSet.from_file(out / "cuts.jsonl.gz")}


def test_manifest_holds_the_good_songs_with_their_arrays(setup):
    ckpt, data, out = setup
    cuts = cuts_by_id(out)
    assert sorted(cuts) == ["alpha", "bravo", "charlie"]
    # 2 s songs are padded to 3 s: 132300 samples at 44.1 kHz → padded to 33 · 4096 → 33 frames; 4 s → 44 frames
    expected_frames = {"alpha": 33, "bravo": 33, "charlie": 44}
    for key, cut in cuts.items():
        latent = cut.load_custom("latent")
        assert latent.shape == (8, 16, expected_frames[key]) and latent.dtype == np.float32
        assert cut.custom["frames"] == expected_frames[key]
        text = cut.load_custom("text_hidden")
        assert text.shape[0] == 2 and text.shape[2] == 768
        assert len(cut.custom["prompts"]) == 2
        for prompt in cut.custom["prompts"]:
            assert sorted(prompt.split(", ")) == sorted(TAGS)
        assert cut.custom["tags"] == TAGS
        assert cut.custom["source"].endswith({"alpha": "alpha.wav", "bravo": "bravo.flac",
                                              "charlie": "charlie.wav"}[key])
    assert cuts["charlie"].custom["has_lyrics"] is False
    assert cuts["charlie"].load_custom("lyric_ids").tolist() == [0]
    for key in ("alpha", "bravo"):
        ids = cuts[key].load_custom("lyric_ids")
        assert cuts[key].custom["has_lyrics"] is True and ids.dtype == np.int64
        assert ids[0] == 261 and ids[-1] == 2  # [START] ... [SPACE]
        assert 6683 in ids.tolist() and 6684 in ids.tolist()  # [verse], [chorus]


def test_cached_arrays_equal_a_direct_encoding(setup):
    from acestep.dcae import MusicDCAE
    from acestep.dcae.resample import resample
    from acestep.text.encoder import TextEncoder

    ckpt, data, out = setup
    cut = cuts_by_id(out)["alpha"]
    wav, sr = sf.read(data / "alpha.wav", dtype="float32", always_2d=True)
    audio = resample(torch.from_numpy(wav.T.copy()), sr, 48000).clamp(-1, 1)
    audio = torch.nn.functional.pad(audio, (0, 3 * 48000 - audio.shape[1]))  # padded to 3 s
    dcae = MusicDCAE.from_checkpoint_dir(ckpt)
    latents, _ = dcae.encode(audio[None], torch.tensor([audio.shape[1]]), sr=48000)
    np.testing.assert_allclose(cut.load_custom("latent"), latents[0].numpy(), rtol=0, atol=1e-5)
    text = TextEncoder.from_dir(ckpt / "umt5-base")
    prompt = cut.custom["prompts"][1]
    hidden, mask = text.encode([prompt])
    n = int(mask.sum())
    assert cut.custom["text_lengths"][1] == n
    stored = cut.load_custom("text_hidden")[1]
    np.testing.assert_allclose(stored[:n], hidden[0, :n].numpy(), rtol=0, atol=1e-5)
    assert not stored[n:].any()


def test_bad_songs_are_listed_with_their_reason(setup):
    _, data, out = setup
    lines = (out / "rejects.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\tpath\treason"
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert sorted(rows) == ["badlyrics", "broken", "empty", "noprompt"]
    assert "empty audio file" in rows["empty"][2]
    assert rows["broken"][1] == str(data / "broken.wav") and "cannot read audio" in rows["broken"][2]
    assert "missing prompt file" in rows["noprompt"][2] and "noprompt_prompt.txt" in rows["noprompt"][2]
    assert "line 2" in rows["badlyrics"][2] and "badlyrics_lyrics.txt" in rows["badlyrics"][2]


def test_a_rerun_skips_finished_songs_and_keeps_a_killed_runs_work(setup, tmp_path):
    ckpt, data, out = setup
    work = tmp_path / "cache"
    shutil.copytree(out, work)
    storage = {p.name: p for p in (work / "storage").rglob("*.npy")}
    # a killed run: alpha and bravo finished (journal only, no manifest yet), charlie's arrays half written
    lines = [json.loads(line) for line in gzip.open(work / "cuts.jsonl.gz", "rt", encoding="utf-8")]
    (work / "cuts.jsonl.gz").unlink()
    with open(work / ".cuts.partial.jsonl", "w", encoding="utf-8") as f:
        for item in lines:
            if item["id"] != "charlie":
                f.write(json.dumps(item) + "\n")
        f.write('{"id": "charlie", "cut sho')  # the line a kill interrupted
    storage["charlie_latent.npy"].write_bytes(b"garbage")
    stamps = {name: p.stat().st_mtime_ns for name, p in storage.items()}
    before = {name: np.load(p) for name, p in storage.items() if not name.startswith("charlie")}
    assert cache_latents.main(cache_args(ckpt, data, work)) == 0
    cuts = cuts_by_id(work)
    assert sorted(cuts) == ["alpha", "bravo", "charlie"]
    assert not (work / ".cuts.partial.jsonl").exists()
    for name, p in storage.items():
        if name.startswith("charlie"):
            assert p.stat().st_mtime_ns != stamps[name]  # recomputed
        else:
            assert p.stat().st_mtime_ns == stamps[name]  # kept as it was
            np.testing.assert_array_equal(np.load(p), before[name])
    assert cuts["charlie"].load_custom("latent").shape == (8, 16, 44)
    # nothing left to do: a third run writes no array
    stamps = {name: p.stat().st_mtime_ns for name, p in storage.items()}
    assert cache_latents.main(cache_args(ckpt, data, work)) == 0
    assert {name: p.stat().st_mtime_ns for name, p in storage.items()} == stamps
    assert sorted(cuts_by_id(work)) == ["alpha", "bravo", "charlie"]


def test_a_cache_refuses_other_settings_and_mix_folders_need_a_target(setup, tmp_path):
    ckpt, data, out = setup
    work = tmp_path / "cache"
    shutil.copytree(out, work)
    with pytest.raises(InputError, match="num_tag_orders 2.*has 3"):
        cache_latents.main(cache_args(ckpt, data, work)[:-4] + ["--num-tag-orders", "3", "--progress", "false"])
    mix = tmp_path / "mix"
    mix.mkdir()
    sf.write(mix / "mini_0001_mix.wav", tone(1.0, 48000, 300, 5), 48000)
    with pytest.raises(InputError, match="use --target mix"):
        cache_latents.main(cache_args(ckpt, mix, tmp_path / "out"))
