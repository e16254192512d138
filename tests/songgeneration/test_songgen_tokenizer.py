"""The SongGeneration tokenizer interface, its registry, the mini stand-in tokenizer and its trainer binary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from shirabe.audio.mel import vocos_mel
from shirabe.audio.resample import resample
from shirabe.cli import InputError
from songgeneration.tokenizer import (
    AudioTokenizer,
    MiniTokenizer,
    as_stereo,
    check_codes,
    known_tokenizers,
    load_tokenizer,
    num_frames,
    register,
    trim_at_eos,
)
from songgeneration.tokenizer import base as tokenizer_base
from songgeneration.tokenizer.standin import kmeans

pytestmark = pytest.mark.usefixtures("single_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
SR = 48000
A_MINOR = (220.0, 261.63, 329.63)
D_MAJOR = (293.66, 369.99, 440.0)


def chord(freqs, seconds: float = 1.0, level: float = 0.3) -> torch.Tensor:
    """A stereo chord of sine partials (with two overtones each), 48 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(a * np.sin(2 * np.pi * f * h * t) for f in freqs for h, a in ((1, 1.0), (2, 0.4), (3, 0.2)))
    x = level * x / np.abs(x).max()
    return torch.tensor(np.stack([x, x]), dtype=torch.float32)


def noise(seconds: float = 1.0, level: float = 0.05, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.standard_normal((2, int(seconds * SR))) * level, dtype=torch.float32)


def mel_24k(wav: torch.Tensor) -> torch.Tensor:
    """Vocos log-mel (100, F) of the channel mean at 24 kHz: the yardstick for round trips."""
    mono = resample(wav.mean(0).numpy(), SR, 24000)
    return vocos_mel(torch.from_numpy(mono))[0]


def mel_distance(a: torch.Tensor, b: torch.Tensor, trim: int = 4) -> float:
    """Mean absolute log-mel difference over the common frames (edges trimmed)."""
    ma, mb = mel_24k(a), mel_24k(b)
    n = min(ma.shape[1], mb.shape[1])
    return float((ma[:, trim:n - trim] - mb[:, trim:n - trim]).abs().mean())


@pytest.fixture(scope="module")
def tok() -> MiniTokenizer:
    train = [chord(A_MINOR), chord(D_MAJOR), noise()]
    return MiniTokenizer.train(train, train, train, k=16, seed=0)


# ---------------------------------------------------------------------------
# The interface


def test_frame_rule_is_int_seconds_times_25_plus_one():
    assert num_frames(0) == 1
    assert num_frames(1919) == 1  # 0.0399 s
    assert num_frames(1920) == 2  # exactly 0.04 s
    assert num_frames(48000) == 26  # 1 s
    assert num_frames(480000) == 251  # 10 s: the 250-frame prompt + 1
    assert num_frames(48000 * 150 + 1000) == 3751


def test_as_stereo_copies_mono_and_rejects_other_layouts():
    mono = torch.arange(5, dtype=torch.float32)
    out = as_stereo(mono)
    assert out.shape == (2, 5)
    assert torch.equal(out[0], mono) and torch.equal(out[1], mono)
    with pytest.raises(InputError, match=r"\[2, N\].*\(5, 2\)"):
        as_stereo(torch.zeros(5, 2), "song.wav")
    with pytest.raises(InputError, match="no samples"):
        as_stereo(torch.zeros(2, 0))
    with pytest.raises(InputError, match="NaN"):
        as_stereo(torch.tensor([[0.0, float("nan")], [0.0, 0.0]]))


def test_check_codes_names_special_ids_and_trim_at_eos_cuts_before_them():
    codes = torch.tensor([[3, 4, 16384, 16385], [1, 2, 16384, 16385]])
    with pytest.raises(InputError, match=r"16384 \(end of song\) at row 0, frame 2"):
        check_codes(codes, 16)
    assert trim_at_eos(codes).tolist() == [[3, 4], [1, 2]]
    with pytest.raises(InputError, match=r"id 16 at row 1, frame 0"):
        check_codes(torch.tensor([[0], [16]]), 16)
    with pytest.raises(InputError, match="integer"):
        check_codes(torch.zeros(1, 3), 16)
    with pytest.raises(InputError, match=r"\(3, 4\)"):
        check_codes(torch.zeros(3, 4, dtype=torch.long), 16)
    assert check_codes(torch.tensor([[[1, 2]]]), 16).tolist() == [[1, 2]]  # [1, 1, T] is accepted


def test_registry_knows_mini_and_lists_names_for_an_unknown_one(monkeypatch):
    monkeypatch.setattr(tokenizer_base, "_REGISTRY", dict(tokenizer_base._REGISTRY))
    assert "mini" in known_tokenizers()
    with pytest.raises(InputError, match=r"unknown tokenizer 'musiccodec' \(known: .*mini"):
        load_tokenizer("musiccodec", "x")

    @register("echo")
    class Echo(AudioTokenizer):
        codebook_size = 4

        def encode(self, wav):
            return torch.zeros(1, num_frames(wav.shape[1]), dtype=torch.long)

        def encode_separate(self, vocal, accompaniment):
            return torch.zeros(2, num_frames(vocal.shape[1]), dtype=torch.long)

        def decode(self, codes, prompt=None):
            return torch.zeros(2, codes.shape[1] * 1920)

        @classmethod
        def load(cls, path, device="cpu", **options):
            obj = cls()
            obj.loaded_from = (path, device, options)
            return obj

    loaded = load_tokenizer("echo", "some/path", "cpu", flag=1)
    assert isinstance(loaded, Echo) and loaded.name == "echo"
    assert loaded.loaded_from == ("some/path", "cpu", {"flag": 1})
    song = loaded.encode_song(torch.zeros(2, 3840), torch.zeros(2, 3840), torch.zeros(2, 3840))
    assert song.shape == (3, 3)
    with pytest.raises(InputError, match="differ in length"):
        loaded.encode_song(torch.zeros(2, 3840), torch.zeros(2, 3840), torch.zeros(2, 1920))


# ---------------------------------------------------------------------------
# k-means


def test_kmeans_finds_separated_clusters_and_is_deterministic():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    gen = torch.Generator().manual_seed(3)
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=gen) for c in centres])
    c1 = kmeans(x, 3, seed=5)
    c2 = kmeans(x, 3, seed=5)
    assert torch.equal(c1, c2)
    found = sorted(c1.round().tolist())
    assert found == [[0.0, 0.0], [0.0, 10.0], [10.0, 0.0]]
    with pytest.raises(InputError, match="150 frames cannot fit 200 centroids"):
        kmeans(x, 200)


# ---------------------------------------------------------------------------
# The mini stand-in


def test_mini_codes_have_the_documented_shapes_and_range(tok):
    x = chord(A_MINOR, 1.0)
    codes = tok.encode(x)
    assert codes.shape == (1, 26) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < 16
    sep = tok.encode_separate(x, noise())
    assert sep.shape == (2, 26)
    song = tok.encode_song(x + noise(), x, noise())
    assert song.shape == (3, 26)
    assert torch.equal(song[1:], sep)


def test_mini_codes_tell_chords_apart(tok):
    a = set(tok.encode(chord(A_MINOR))[0, 3:-3].tolist())
    d = set(tok.encode(chord(D_MAJOR))[0, 3:-3].tolist())
    assert a and d and not a & d


def test_mini_round_trip_is_far_closer_than_random_codes(tok):
    x = chord(A_MINOR, 1.0)
    y = tok.decode(tok.encode(x))
    assert y.shape == (2, 26 * 1920)
    assert torch.equal(y[0], y[1])
    rand = torch.randint(0, 16, (1, 26), generator=torch.Generator().manual_seed(0))
    r = tok.decode(rand, prompt=noise(0.5))
    d_round, d_random = mel_distance(x, y), mel_distance(x, r)
    assert d_round < 0.3 * d_random, (d_round, d_random)


def test_mini_separate_decode_sums_the_two_stems(tok):
    vocal, accompaniment = chord(D_MAJOR), noise(seed=1)
    y = tok.decode(tok.encode_separate(vocal, accompaniment))
    assert y.shape == (2, 26 * 1920)
    wrong = tok.decode(torch.stack([tok.encode(noise(seed=2))[0], tok.encode(chord(A_MINOR))[0]]))
    target = vocal + accompaniment
    assert mel_distance(target, y) < 0.5 * mel_distance(target, wrong)


def test_mini_save_load_round_trip_and_bad_files(tok, tmp_path):
    path = tok.save(tmp_path / "mini.safetensors")
    loaded = load_tokenizer("mini", path, "cpu")
    assert isinstance(loaded, MiniTokenizer) and loaded.codebook_size == 16
    for stream in ("mixed", "vocal", "accompaniment"):
        assert torch.equal(loaded.codebooks[stream], tok.codebooks[stream])
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated.safetensors: not a readable safetensors file"):
        MiniTokenizer.load(truncated)
    with pytest.raises(InputError, match="missing.safetensors: no such tokenizer file"):
        MiniTokenizer.load(tmp_path / "missing.safetensors")

    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"codebook.mixed": torch.zeros(4, 100)}, str(other), metadata={"tokenizer": "released"})
    with pytest.raises(InputError, match="not a mini tokenizer file"):
        MiniTokenizer.load(other)


def test_mixed_only_tokenizer_refuses_stems_in_one_line():
    mixed_only = MiniTokenizer.train([chord(A_MINOR, 0.5), noise(0.5)], k=4, seed=0)
    assert not mixed_only.can_decode_separate
    with pytest.raises(InputError, match="cannot decode vocal \\+ accompaniment"):
        mixed_only.decode(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(InputError, match="no vocal/accompaniment codebooks"):
        mixed_only.encode_separate(chord(A_MINOR, 0.5), noise(0.5))


# ---------------------------------------------------------------------------
# The trainer binary


def _write(path: Path, wav: torch.Tensor, sr: int = SR) -> Path:
    sf.write(str(path), wav.t().numpy(), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def stem_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("stems")
    for i, (v, a) in enumerate([(chord(A_MINOR, 0.5), noise(0.5, seed=1)), (chord(D_MAJOR, 0.5), noise(0.5, seed=2))]):
        _write(d / f"song{i}_vocal.wav", v)
        _write(d / f"song{i}_inst.wav", a)
        if i == 0:
            _write(d / f"song{i}_mix.wav", v + a)  # song1 has no mix: the stems' sum is used
    return d


def test_train_tokenizer_binary_writes_a_deterministic_three_stream_file(stem_dir, tmp_path):
    from safetensors import safe_open

    from songgeneration.bin.train_tokenizer import main

    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.safetensors"
        assert main(["--wavs", str(stem_dir), "--output", str(out), "--codebook-size", "8", "--seed", "3",
                     "--device", "cpu", "--progress", "false"]) == 0
        outs.append(out)
    with safe_open(str(outs[0]), "pt") as f0, safe_open(str(outs[1]), "pt") as f1:
        assert sorted(f0.keys()) == ["codebook.accompaniment", "codebook.mixed", "codebook.vocal"]
        for key in f0.keys():
            assert f0.get_tensor(key).shape == (8, 100)
            assert torch.equal(f0.get_tensor(key), f1.get_tensor(key))
    tok = load_tokenizer("mini", outs[0])
    assert tok.encode_separate(chord(A_MINOR, 0.5), noise(0.5)).shape == (2, 13)


def test_train_tokenizer_binary_reads_a_list_and_reports_bad_lines(stem_dir, tmp_path):
    from songgeneration.bin.train_tokenizer import main

    listing = tmp_path / "wavs.txt"
    listing.write_text(f"# mixes only\n{stem_dir / 'song0_mix.wav'}\n\n{stem_dir / 'song0_vocal.wav'}\n")
    out = tmp_path / "mix.safetensors"
    assert main(["--wavs", str(listing), "--output", str(out), "--codebook-size", "4", "--progress", "false",
                 "--device", "cpu"]) == 0
    assert sorted(load_tokenizer("mini", out).codebooks) == ["mixed"]  # a lone stem fits no stem codebook

    listing.write_text(f"{stem_dir / 'song0_mix.wav'}\nnot_there.wav\n")
    with pytest.raises(InputError, match=r"wavs.txt:2: .*not_there.wav: no such audio file"):
        main(["--wavs", str(listing), "--output", str(out)])
    with pytest.raises(InputError, match="--codebook-size 16385"):
        main(["--wavs", str(listing), "--output", str(out), "--codebook-size", "16385"])


def test_train_tokenizer_binary_fails_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, "-m", "songgeneration.bin.train_tokenizer", "--wavs", str(tmp_path),
                          "--output", str(tmp_path / "t.safetensors")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "no .wav, .flac or .mp3 files" in lines[0], res.stderr
