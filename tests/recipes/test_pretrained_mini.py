"""The pretrained mini model shipped with egs/zipvoice_ja (what `make demo` adapts)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "egs" / "zipvoice_ja" / "pretrained" / "zipvoice_tiny_mini"


def test_layout_size_and_checksum_in_its_readme():
    for name in ("model.json", "tokens.txt", "model.pt", "README.md"):
        assert (MODEL_DIR / name).is_file(), name
    size = (MODEL_DIR / "model.pt").stat().st_size
    assert size <= 20 * 2**20
    digest = hashlib.sha256((MODEL_DIR / "model.pt").read_bytes()).hexdigest()
    assert digest in (MODEL_DIR / "README.md").read_text(encoding="utf-8")


def test_loads_strictly_without_pickle_and_matches_its_readme():
    from zipvoice.models import load_model

    state = torch.load(MODEL_DIR / "model.pt", map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["model"].values())
    model = load_model(MODEL_DIR, "model.pt")  # strict
    readme = (MODEL_DIR / "README.md").read_text(encoding="utf-8")
    assert f"{sum(p.numel() for p in model.parameters()):,} parameters" in readme


def test_token_table_is_the_recipes(tmp_path):
    """Stage 3 writes the same table, so fine-tuning on the mini corpus keeps every token id."""
    out = tmp_path / "tokens.txt"
    r = subprocess.run([sys.executable, "-m", "zipvoice.bin.prepare_token_file", "--tokenizer", "japanese",
                        "--scheme", "prosody", "--output", str(out)], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == (MODEL_DIR / "tokens.txt").read_text(encoding="utf-8")


def test_it_speaks_a_sentence_of_plausible_length(tmp_path):
    from shirabe.audio.fbank import VocosFbank
    from shirabe.vocoder import load_vocoder
    from zipvoice.models import load_model
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.infer import SamplingOptions, generate

    prompt = tmp_path / "prompt.wav"
    import soundfile as sf

    t = np.arange(24000 * 2) / 24000
    sf.write(prompt, (0.1 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), 24000)
    model = load_model(MODEL_DIR, "model.pt")
    tokenizer = get_tokenizer("japanese", MODEL_DIR / "tokens.txt", scheme="prosody")
    torch.manual_seed(0)
    result = generate(model, load_vocoder(None), tokenizer, VocosFbank(), str(prompt), "こんにちは。",
                      "今日はいい天気ですね。", SamplingOptions(num_step=4))
    wav = np.asarray(result.wav)
    # the prompt speaks 5 morae in 2 s; the text has 11 morae: about 4.4 s, never silent or non-finite
    assert 2.0 < len(wav) / 24000 < 8.0
    assert np.isfinite(wav).all() and np.sqrt(np.mean(wav ** 2)) > 1e-3
