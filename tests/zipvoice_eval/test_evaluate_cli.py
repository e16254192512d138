"""zipvoice.bin.evaluate end to end on mini-corpus recordings standing in for syntheses."""

import json
import shutil
import subprocess
import sys

import pytest

from shirabe.eval.cer import cer
from shirabe.eval.results_md import read_section
from shirabe.speaker import default_campplus_path

pytestmark = pytest.mark.skipif(not default_campplus_path().is_file(), reason="CAM++ weights missing (tools/install.sh)")


def corpus_rows(speech):
    rows = {}
    for split in ("train", "dev", "test"):
        for line in (speech / f"{split}.tsv").read_text(encoding="utf-8").splitlines():
            utt, text, wav = line.split("\t")[:3]
            rows[utt] = (text, speech / wav if not wav.startswith("/") else wav)
    return rows


@pytest.fixture(scope="module")
def setup(mini_speech, tmp_path_factory):
    """Two items: the 'synthesis' is the ground truth itself, or another speaker saying another text."""
    rows = corpus_rows(mini_speech)
    by_speaker = {}
    for utt in sorted(rows):
        by_speaker.setdefault(utt.rsplit("_", 1)[0], []).append(utt)
    (a1, a2), (_, b2) = list(by_speaker.values())[:2]
    work = tmp_path_factory.mktemp("evaluate")
    wav_dir = work / "out"
    wav_dir.mkdir()
    shutil.copy(rows[a2][1], wav_dir / "same.wav")
    shutil.copy(rows[b2][1], wav_dir / "other.wav")
    (work / "test_list.tsv").write_text(
        f"same\t{rows[a1][0]}\t{rows[a1][1]}\t{rows[a2][0]}\n"
        f"other\t{rows[a1][0]}\t{rows[a1][1]}\t{rows[a2][0]}\n", encoding="utf-8")
    (work / "ground_truth.tsv").write_text(f"same\t{rows[a2][1]}\nother\t{rows[a2][1]}\n", encoding="utf-8")
    return work, wav_dir


def run_evaluate(*args):
    return subprocess.run([sys.executable, "-m", "zipvoice.bin.evaluate", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def test_metrics_json_and_results_table(setup, tiny_whisper_dir):
    work, wav_dir = setup
    out, md = work / "metrics.json", work / "RESULTS.md"
    r = run_evaluate("--test-list", work / "test_list.tsv", "--wav-dir", wav_dir, "--output", out,
                     "--asr-model-dir", tiny_whisper_dir, "--results-md", md, "--system", "probe")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["system"] == "probe" and result["num_utterances"] == 2
    same, other = result["utterances"]
    # the output is the ground-truth recording itself
    assert same["mcd"] == 0.0 and same["f0_rmse_cents"] == 0.0 and same["vuv_error"] == 0.0
    assert same["duration_ratio"] == 1.0 and same["sim_gt"] == pytest.approx(1.0, abs=1e-6)
    # another speaker saying another sentence
    assert other["sim"] < same["sim"] - 0.2 and other["mcd"] > 2.0
    for key in ("sim", "mcd", "duration_ratio"):
        assert result["mean"][key] == pytest.approx((same[key] + other[key]) / 2)
        assert result["count"][key] == 2
    # CER of each transcript against the text, and the corpus CER over both
    for u in (same, other):
        assert isinstance(u["transcript"], str)
        assert u["cer"] == pytest.approx(cer(read_text(work, u["id"]), u["transcript"])[0])
    total_edits = same["cer_edits"] + other["cer_edits"]
    assert result["mean"]["cer"] == pytest.approx(total_edits / (same["cer_ref_chars"] + other["cer_ref_chars"]))
    table = read_section(md, "evaluate:probe")
    assert "| probe | 2 |" in table and "MCD (dB)" in table and "CER" in table


def read_text(work, utt):
    for line in (work / "test_list.tsv").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if fields[0] == utt:
            return fields[3]
    raise KeyError(utt)


def test_missing_output_is_a_one_line_error(setup, tmp_path):
    work, _ = setup
    r = run_evaluate("--test-list", work / "test_list.tsv", "--wav-dir", tmp_path, "--output", tmp_path / "m.json")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith(f"{tmp_path / 'same.wav'}: no output for test item 'same' of "
                                                      f"{work / 'test_list.tsv'}")
