"""songbloom.bin.evaluate end to end on synthetic songs: the tiny MuQ (tests/fixtures/muq_tiny), a phone recognizer
that hears nothing (PER exactly 100 %), a sample that is the ground truth itself, a noise sample, an unreadable
and a missing one; the TSV, metrics.json, the RESULTS.md section and the page as headless Chromium renders it."""

import csv
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shirabe.cli import InputError, run_main
from shirabe.eval.results_md import read_section
from songbloom.bin.evaluate import main as evaluate_main

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "asr"))
sys.path.insert(0, str(TESTS / "eval"))
from recognizer_testlib import blank_recognizer  # noqa: E402
from test_report_html import CHROMIUM, HEADLESS, DomCounter, needs_chromium  # noqa: E402

MUQ_TINY = TESTS / "fixtures" / "muq_tiny"
SR = 48000
# an intro of six one-second tags (7 symbols with its '.'), then a verse of 20 symbols:
# [verse] k a e r u n o u t a , k I k o e r u .  -> over 10 s the intro takes 10 * 7 / 27 = 2.6 s
LYRICS = "[intro] [intro] [intro] [intro] [intro] [intro] . [verse] かえるのうた , きこえる ."
REF_PHONES = 17  # k a e r u n o u t a | k i k o e r u
DEV = {"sketch_accuracy": 0.41, "flow_loss": 0.83}


def song(seconds_silent: float, seconds_sung: float) -> np.ndarray:
    t = np.arange(int(seconds_sung * SR)) / SR
    sung = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * 0.2
    return np.concatenate([np.zeros(int(seconds_silent * SR)), sung]).astype(np.float32)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    work = tmp_path_factory.mktemp("evaluate")
    gen, refs, prompts = work / "generate" / "base", work / "refs", work / "prompts"
    for d in (gen, refs, prompts):
        d.mkdir(parents=True)
    truth = song(2.5, 7.5)
    sf.write(refs / "songA.wav", truth, SR)
    sf.write(refs / "songB.wav", song(1.0, 4.0), SR)
    for idx in ("songA", "songB"):
        sf.write(prompts / f"{idx}.wav", song(0.0, 3.0), SR)
    sf.write(gen / "songA_s0.wav", np.stack([truth, truth], axis=1), SR)  # 48 kHz stereo, as generated
    rng = np.random.default_rng(0)
    sf.write(gen / "songA_s1.wav", (0.1 * rng.standard_normal((5 * SR, 2))).astype(np.float32), SR)
    (gen / "songA_s2.wav").write_bytes(b"not audio")
    jsonl = work / "songs_test.jsonl"
    jsonl.write_text("".join(json.dumps({"idx": idx, "lyrics": LYRICS, "prompt_wav": f"prompts/{idx}.wav"},
                                        ensure_ascii=False) + "\n" for idx in ("songA", "songB")), encoding="utf-8")
    (work / "dev.json").write_text(json.dumps(DEV), encoding="utf-8")
    blank_recognizer(work / "blank")
    return work


@pytest.fixture(scope="module")
def run(setup):
    work = setup
    r = subprocess.run([sys.executable, "-m", "songbloom.bin.evaluate", "--generated-dir", str(work / "generate" / "base"),
                        "--jsonl", str(work / "songs_test.jsonl"), "--reference-dir", str(work / "refs"),
                        "--phone-model-dir", str(work / "blank"), "--muq-dir", str(MUQ_TINY), "--dev-metrics",
                        str(work / "dev.json"), "--system", "base", "--results", str(work / "RESULTS.md"),
                        "--report-dir", str(work / "report"), "--max-duration", "8", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return work, r.stderr


def test_rows_per_sample_with_status(run):
    work, _ = run
    with (work / "report" / "scores.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [(r["idx"], r["sample"]) for r in rows] == [("songA", "s0"), ("songA", "s1"), ("songA", "s2"),
                                                      ("songB", "–")]
    s0, s1, s2, b = rows
    assert s0["status"] == s1["status"] == "ok"
    assert s2["status"].startswith("unreadable: ")
    assert b["status"] == f"missing: no songB_s<k>.wav in {work / 'generate' / 'base'}"
    # the phone recognizer hears nothing: every phone of the sung lyrics is deleted
    for r in (s0, s1):
        assert (r["per"], r["per_errors"], r["per_ref_phones"], r["per_gt"]) == ("100.0000", "17", "17", "100.0000")
    # s0 is the ground truth itself (as stereo): its style similarity and structure are the ground truth's
    assert s0["style_sim"] == s0["style_sim_gt"] and float(s0["style_sim"]) > 0.5
    assert (s0["structure_acc"], s0["structure_acc_gt"], s0["duration_ratio_gt"]) == ("1.0000", "1.0000", "1.0000")
    # noise has no voicing: the silent intro adheres, the verse does not
    assert (s1["structure_acc"], s1["vocal_active"]) == ("0.5000", "0.0000")
    # a 10 s song runs over the 8 s budget, 5 s of noise does not
    assert (s0["duration"], s0["over_budget"], s0["budget_use"]) == ("10.0000", "1", "1.2500")
    assert (s1["duration"], s1["over_budget"]) == ("5.0000", "0")


def test_metrics_json_means_and_frechet(run):
    work, log = run
    m = json.loads((work / "report" / "metrics.json").read_text(encoding="utf-8"))
    assert (m["songs"], m["samples"], m["missing"], m["gt_songs"]) == (2, 2, 2, 2)
    assert m["mean"]["per"] == 100.0 and m["count"]["per"] == 2
    assert m["ground_truth"]["mean"]["per"] == 100.0 and m["ground_truth"]["count"]["per"] == 2
    assert m["mean"]["over_budget"] == 0.5 and m["mean"]["structure_acc"] == 0.75
    assert m["dev_metrics"] == DEV
    fd = m["frechet"]
    # MuQ runs at 25 frames/s: 10 s + 5 s generated, 10 s + 5 s of ground truth; 64-dim tiny features
    assert (fd["frames_1"], fd["frames_2"], fd["dims"], fd["songs_generated"]) == (375, 375, 64, 2)
    assert fd["fd"] > 0 and m["mean"]["fd"] == fd["fd"]
    assert "PER 100.0 % (ground truth 100.0 %)" in log
    assert re.search(r"songB: no generated sample", log)


def test_results_section(run):
    work, _ = run
    section = read_section(work / "RESULTS.md", "songbloom-evaluate:base")
    table = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:5] == ["system", "songs", "samples", "missing", "PER (%)"]
    assert header[-2:] == ["sketch_accuracy", "flow_loss"]
    base = [c.strip() for c in table[2].strip("|").split("|")]
    assert base[:5] == ["base", "2", "2", "2", "100.0"] and base[-2:] == ["0.4100", "0.8300"]
    gt = [c.strip() for c in table[3].strip("|").split("|")]
    assert gt[:5] == ["ground truth (ceiling)", "2", "–", "–", "100.0"]


@needs_chromium
def test_page_renders_players_and_numbers(run):
    work, _ = run
    index = work / "report" / "index.html"
    r = subprocess.run([CHROMIUM, *HEADLESS, "--dump-dom", index.as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = DomCounter()
    dom.feed(r.stdout)
    # songA: prompt, ground truth, s0, s1 (s2 is unreadable); songB: prompt and ground truth
    assert len(dom.audio) == 6
    for src in dom.audio:  # every player's source is a copied, decodable audio file
        assert src and not src.startswith("/") and (index.parent / src).is_file()
        info = sf.info(index.parent / src)
        assert info.samplerate == SR and info.frames > SR
    cells = [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", r.stdout)]
    m = json.loads((work / "report" / "metrics.json").read_text(encoding="utf-8"))
    for text in ("PER (%)", "100.0", "0.4100", "0.8300", f"{m['frechet']['fd']:.2f}", "ground truth (ceiling)",
                 f"missing: no songB_s<k>.wav in {work / 'generate' / 'base'}"):
        assert text in cells, text
    assert "かえるのうた、きこえる" in r.stdout


def test_input_errors_are_one_line(setup, tmp_path, capsys):
    work = setup
    bad = tmp_path / "songs.jsonl"
    bad.write_text(json.dumps({"idx": "a", "lyrics": "うた", "prompt_wav": "a.wav"}) + "\n"
                   + json.dumps({"idx": "b", "prompt_wav": "b.wav"}) + "\n", encoding="utf-8")
    base = ["--generated-dir", str(work / "generate" / "base"), "--report-dir", str(tmp_path / "report")]
    with pytest.raises(SystemExit) as e:
        run_main(evaluate_main, [*base, "--jsonl", str(bad)])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {bad}:2: missing field 'lyrics'")
    with pytest.raises(InputError, match=r"absent: no such directory of generated songs"):
        evaluate_main(["--generated-dir", str(tmp_path / "absent"), "--jsonl", str(bad), "--report-dir",
                       str(tmp_path / "r")])
    with pytest.raises(InputError, match=r"--muq-layer 5: the model has hidden states 0..2"):
        evaluate_main([*base, "--jsonl", str(work / "songs_test.jsonl"), "--muq-dir", str(MUQ_TINY),
                       "--muq-layer", "5", "--device", "cpu"])
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"idx": "a", "lyrics": "[verse] うた .", "prompt_wav": "a.wav"}) + "\n",
                       encoding="utf-8")
    blank_recognizer(tmp_path / "few_phones", phones=["a", "i"])
    with pytest.raises(InputError, match=rf"{unknown}:1: lyrics: phone\(s\) not in .*'u'"):
        evaluate_main([*base, "--jsonl", str(unknown), "--phone-model-dir", str(tmp_path / "few_phones"),
                       "--device", "cpu"])
