"""zipvoice.bin.evaluate --phone-model-dir: the PER of each output and of its ground truth (the ceiling)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shirabe.asr.phones import TextPhones
from shirabe.cli import run_main
from shirabe.eval.results_md import read_section
from shirabe.speaker import default_campplus_path
from zipvoice.bin.evaluate import main as evaluate_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asr"))
from recognizer_testlib import blank_recognizer, fitted_recognizer  # noqa: E402

needs_campplus = pytest.mark.skipif(not default_campplus_path().is_file(),
                                    reason="CAM++ weights missing (tools/install.sh)")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mini_speech) -> Path:
    return fitted_recognizer(tmp_path_factory.getbasetemp(), mini_speech)


@pytest.fixture(scope="module")
def setup(mini_speech, tmp_path_factory):
    """Two outputs of one training sentence: its recording itself, and silence as long as the recording."""
    (a1, text1, wav1), (a2, text2, wav2) = [line.split("\t")[:3] for line in
                                             (mini_speech / "train.tsv").read_text(encoding="utf-8").splitlines()[:2]]
    work = tmp_path_factory.mktemp("evaluate_per")
    out = work / "out"
    out.mkdir()
    shutil.copy(wav2, out / "same.wav")
    audio, sr = sf.read(wav2, dtype="float32")
    sf.write(out / "silence.wav", np.zeros_like(audio), sr)
    (work / "test_list.tsv").write_text(
        f"same\t{text1}\t{wav1}\t{text2}\nsilence\t{text1}\t{wav1}\t{text2}\n", encoding="utf-8")
    (work / "ground_truth.tsv").write_text(f"same\t{wav2}\nsilence\t{wav2}\n", encoding="utf-8")
    return work, text2


@needs_campplus
def test_per_columns_keys_and_log_line(setup, fitted):
    work, text = setup
    out, md = work / "metrics.json", work / "RESULTS.md"
    r = subprocess.run([sys.executable, "-m", "zipvoice.bin.evaluate", "--test-list", str(work / "test_list.tsv"),
                        "--wav-dir", str(work / "out"), "--output", str(out), "--phone-model-dir", str(fitted),
                        "--results-md", str(md), "--system", "probe", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["settings"]["phone_model_dir"] == str(fitted)
    same, silence = result["utterances"]
    n_phones = len(TextPhones(quiet=True)(text))
    for u in (same, silence):
        assert u["per_ref_phones"] == u["per_gt_ref_phones"] == n_phones
        assert u["per"] == pytest.approx(100 * u["per_errors"] / n_phones)
    # the output is the ground-truth recording itself: the same phones, the same PER
    assert same["per_hyp"] == same["per_gt_hyp"] and same["per"] == same["per_gt"]
    # the recognizer fits its training sentence; it hears no phone in silence
    assert same["per"] < 30.0
    assert silence["per_hyp"] == "" and silence["per"] == 100.0 and silence["per_errors"] == n_phones
    # means: summed errors over summed reference phones
    mean_per = 100 * (same["per_errors"] + silence["per_errors"]) / (2 * n_phones)
    mean_gt = 100 * (same["per_gt_errors"] + silence["per_gt_errors"]) / (2 * n_phones)
    assert result["mean"]["per"] == pytest.approx(mean_per) and result["mean"]["per_gt"] == pytest.approx(mean_gt)
    assert result["count"]["per"] == result["count"]["per_gt"] == 2
    header, _, row = [line for line in read_section(md, "evaluate:probe").splitlines() if line.startswith("|")]
    assert header.endswith("| PER (%) | PER ground truth (%) |")
    assert row.endswith(f"| {mean_per:.1f} | {mean_gt:.1f} |")
    logged = re.findall(r"PER \d+\.\d % \(ground truth \d+\.\d %\)$", r.stderr, re.MULTILINE)
    assert logged == [f"PER {mean_per:.1f} % (ground truth {mean_gt:.1f} %)"]


def _run(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        run_main(evaluate_main, argv)
    return e.value.code, capsys.readouterr().err


def test_unknown_phone_model_dir_is_a_one_line_error(setup, tmp_path, capsys):
    work, _ = setup
    code, err = _run(["--test-list", str(work / "test_list.tsv"), "--wav-dir", str(work / "out"),
                      "--output", str(tmp_path / "m.json"), "--phone-model-dir", str(tmp_path / "nope"),
                      "--device", "cpu"], capsys)
    assert code == 2
    assert err.strip().endswith(f"error: --phone-model-dir {tmp_path / 'nope'}: no such model directory")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "m.json").exists()


def test_text_with_phones_the_recognizer_lacks_is_a_one_line_error(setup, tmp_path, capsys):
    work, _ = setup
    model = blank_recognizer(tmp_path / "ka", phones=["a", "k"])
    test_list = tmp_path / "test_list.tsv"
    test_list.write_text(work.joinpath("test_list.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    code, err = _run(["--test-list", str(test_list), "--wav-dir", str(work / "out"), "--ground-truth", "none",
                      "--output", str(tmp_path / "m.json"), "--phone-model-dir", str(model), "--device", "cpu"], capsys)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert re.search(rf"error: {re.escape(str(test_list))}: test item 'same': phone\(s\) not in "
                     rf"{re.escape(str(model / 'phones.txt'))}: '\w+'", line), line
