"""egs/zipvoice_ja/run.sh stages 0-6 end to end on the smallest mini corpus with the tiny model."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet

from zipvoice.models import build_model, load_model, read_config
from zipvoice.tokenizer.token_table import vocab_info

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "zipvoice_ja"


def dev_loss(model, cuts, token_file) -> float:
    """Validation loss with fixed noise and upstream's deterministic t = arange(B)/B."""
    from zipvoice.tokenizer.token_table import read_token_table

    token2id = read_token_table(token_file)
    feats = [torch.from_numpy(c.load_features()) * 0.1 for c in cuts]
    lens = torch.tensor([f.shape[0] for f in feats])
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    tokens = [[token2id[t] for t in c.supervisions[0].custom["tokens"] if t in token2id] for c in cuts]
    g = torch.Generator().manual_seed(1234)
    noise = torch.randn(x.shape, generator=g)
    t = (torch.arange(len(feats)) / len(feats)).view(-1, 1, 1)
    model.eval()
    torch.manual_seed(0)  # the speech-condition mask is random
    with torch.no_grad():
        return float(model(tokens, x, lens, noise, t))


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("zipvoice_ja")
    args = ["--data-dir", root / "data", "--exp-dir", root / "exp", "--num-speakers", 3,
            "--sentences-per-speaker", 3, "--num-epochs", 6, "--avg", 2, "--max-duration", 5, "--num-step", 4]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run(["./run.sh", "--stage", "0", "--stop-stage", "6", *map(str, args)],
                       cwd=RECIPE, capture_output=True, text=True, env=env)
    return root, r


def test_all_stages_finish_and_say_where_the_results_are(recipe_run):
    root, r = recipe_run
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in range(7):
        assert f"Stage {stage}:" in r.stdout
    assert "Synthesized audio:" in r.stdout and "Averaged model:" in r.stdout
    assert (root / "exp" / "epoch-6-avg-2.pt").is_file()


def test_zero_shot_outputs_are_audio_for_unseen_speakers(recipe_run):
    root, r = recipe_run
    res = root / "exp" / "infer" / "epoch-6-avg-2"
    test_list = (res / "test_list.tsv").read_text(encoding="utf-8").splitlines()
    train_speakers = {line.split("\t")[0].rsplit("_", 1)[0]
                      for line in (root / "data" / "mini" / "train.tsv").read_text(encoding="utf-8").splitlines()}
    assert test_list
    for line in test_list:
        utt, _, prompt_wav, _ = line.split("\t")
        assert utt.split("_from_")[-1].rsplit("_", 1)[0] not in train_speakers
        audio, sr = sf.read(res / f"{utt}.wav")
        assert sr == 24000 and audio.size > 0.2 * sr and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_training_lowered_the_dev_loss(recipe_run):
    root, _ = recipe_run
    data = root / "data"
    cuts = list(CutSet.from_file(data / "fbank" / "mini_cuts_dev_tokens.jsonl.gz"))
    token_file = data / "tokens.txt"
    trained = load_model(root / "exp", "epoch-6-avg-2.pt", token_file=token_file)
    config = read_config(RECIPE / "conf" / "zipvoice_tiny.json")
    vocab_size, pad_id = vocab_info(token_file)
    losses0 = []
    for seed in range(3):  # the loss of an untrained model, over a few initialisations
        torch.manual_seed(seed)
        losses0.append(dev_loss(build_model(config["model"], vocab_size, pad_id), cuts, token_file))
    after = dev_loss(trained, cuts, token_file)
    assert after < 0.8 * min(losses0), (after, losses0)


def test_lora_fine_tuning_of_a_released_model(recipe_run, tmp_path):
    """Stages 3-6 adapting the fixture checkpoint with LoRA: extended token table, adapter-only
    checkpoints, averaging, merging into a plain model that loads strictly, inference."""
    import shutil

    root, r = recipe_run
    assert r.returncode == 0
    base = Path(__file__).resolve().parents[1] / "fixtures" / "zipvoice_tiny"
    data = tmp_path / "data"
    (data / "fbank").mkdir(parents=True)
    (data / "mini").mkdir()
    for s in ("train", "dev"):
        shutil.copy(root / "data" / "fbank" / f"mini_cuts_{s}.jsonl.gz", data / "fbank")
    shutil.copy(root / "data" / "mini" / "test.tsv", data / "mini" / "test.tsv")
    args = ["--stage", 3, "--stop-stage", 6, "--data-dir", data, "--exp-dir", tmp_path / "exp", "--finetune-from", base,
            "--use-lora", "true", "--lora-rank", 4, "--num-epochs", 3, "--avg", 1, "--max-duration", 5, "--num-step", 2]
    out = subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    base_tokens = (base / "tokens.txt").read_text(encoding="utf-8").splitlines()
    tokens = (data / "tokens.txt").read_text(encoding="utf-8").splitlines()
    assert tokens[: len(base_tokens)] == base_tokens and len(tokens) > len(base_tokens)
    adapter = torch.load(tmp_path / "exp" / "epoch-3.pt", weights_only=True)
    assert any("lora_" in k for k in adapter["model"]) and "fm_decoder.in_proj.weight" not in adapter["model"]
    merged = tmp_path / "exp" / "merged-epoch-3-avg-1"
    model = load_model(merged, "model.pt")
    assert not any("lora_" in k for k in model.state_dict())
    assert model.embed.weight.shape[0] == len(tokens)
    assert len(list((tmp_path / "exp" / "infer" / "epoch-3-avg-1").glob("*.wav"))) >= 1


def test_distillation_stages_write_a_student_and_the_comparison(recipe_run):
    """Stages 9-12 (local/run_distill.sh) on the averaged model: both stages, averaging, dev-loss table."""
    from zipvoice.models.zipvoice_distill import ZipVoiceDistill

    root, r = recipe_run
    assert r.returncode == 0
    results = root / "RESULTS.md"
    args = ["--stage", 9, "--stop-stage", 12, "--data-dir", root / "data", "--exp-dir", root / "exp",
            "--num-epochs", 6, "--avg", 2, "--max-duration", 5, "--distill-iters", 4, "--distill2-iters", 2,
            "--distill-avg", 1, "--results-md", results]
    out = subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    distill = root / "exp" / "distill"
    assert (distill / "first" / "iter-4-avg-1.pt").is_file()
    student = load_model(distill / "second", "iter-2-avg-1.pt", model_name="zipvoice_distill")
    assert isinstance(student, ZipVoiceDistill)
    table = results.read_text(encoding="utf-8")
    rows = [ln for ln in table.splitlines() if ln.startswith(("| teacher", "| distilled"))]
    assert len(rows) == 4 and f"distill:{root / 'exp'}" in table
    losses = [float(ln.split("|")[4]) for ln in rows]
    assert all(np.isfinite(losses)) and all(v > 0 for v in losses)
