"""The study's helper scripts on small hand-made inputs: the speaker split and the report step."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from test_report_html import (  # tests/eval (see conftest.py)
    CHROMIUM,
    HEADLESS,
    DomCounter,
    needs_chromium,
)

from shirabe.eval.results_md import read_section

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "zipvoice_ja"


def run(script, *args):
    return subprocess.run([sys.executable, str(RECIPE / "local" / script), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def write_corpus(d: Path, speakers: dict[str, int], name: str) -> Path:
    lines = []
    for spk, n in speakers.items():
        for i in range(1, n + 1):
            wav = d / "wavs" / f"{spk}_{i:04d}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, np.zeros(2400, dtype=np.float32), 24000)
            lines.append(f"{spk}_{i:04d}\t文{i}。\t{wav}")
    path = d / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_split_holds_out_one_speaker_of_each_source(tmp_path):
    pool = write_corpus(tmp_path, {"kokoro_a": 6, "hts_01": 6, "kokoro_b": 6, "hts_02": 6, "kokoro_c": 6}, "train.tsv")
    test = write_corpus(tmp_path, {"hts_03": 4}, "test.tsv")
    (tmp_path / "speakers.tsv").write_text(
        "speaker\tsource\n" + "".join(f"{s}\t{'kokoro' if s.startswith('kokoro') else 'hts'}\n"
                                      for s in ["kokoro_a", "hts_01", "kokoro_b", "hts_02", "kokoro_c", "hts_03"]),
        encoding="utf-8")
    out = tmp_path / "lists"
    r = run("study_split.py", "--pool", pool, "--test", test, "--speakers-tsv", tmp_path / "speakers.tsv",
            "--out-dir", out, "--eval-per-speaker", 2)
    assert r.returncode == 0, r.stderr
    split = json.loads((out / "split.json").read_text())
    # the last speaker (kokoro_c) and the last speaker of the other source (hts_02)
    assert split["finetune_speakers"] == ["kokoro_c", "hts_02"]
    assert split["pretrain_speakers"] == ["kokoro_a", "hts_01", "kokoro_b"]

    def ids(name):
        return [line.split("\t")[0] for line in (out / f"{name}.tsv").read_text().splitlines()]

    assert ids("finetune_eval") == ["hts_02_0005", "hts_02_0006", "kokoro_c_0005", "kokoro_c_0006"]
    assert ids("finetune_dev") == ["hts_02_0004", "kokoro_c_0004"]
    assert len(ids("finetune_train")) == 6 and not set(ids("finetune_train")) & set(ids("finetune_eval"))
    pre = ids("pretrain_train") + ids("pretrain_dev")
    assert len(pre) == 18 and not any(u.startswith(("kokoro_c", "hts_02")) for u in pre)
    assert ids("zero_shot") == ["hts_03_0001", "hts_03_0002"]
    # a fine-tuning speaker with too few utterances is a one-line error
    r = run("study_split.py", "--pool", pool, "--test", test, "--out-dir", out, "--eval-per-speaker", 5)
    assert r.returncode == 2 and "needs at least 7" in r.stderr.strip().splitlines()[-1]


def write_study(tmp_path: Path, means: dict[str, dict]) -> Path:
    """What run_study.sh leaves for the report step: lists, logs, dev losses and each system's
    metrics.json with the mean metrics ``means[system]`` for both sets."""
    work = tmp_path / "study"
    lists = work / "lists"
    wav = tmp_path / "a.wav"
    sf.write(wav, 0.1 * np.sin(np.arange(4800) / 5.0).astype(np.float32), 24000)
    (lists / "finetune_eval").mkdir(parents=True)
    (lists / "zero_shot").mkdir(parents=True)
    for s in ("finetune_eval", "zero_shot"):
        (lists / s / "test_list.tsv").write_text(f"u1\tp\t{wav}\t文。\n", encoding="utf-8")
        (lists / s / "ground_truth.tsv").write_text(f"u1\t{wav}\n", encoding="utf-8")
    (lists / "split.json").write_text(json.dumps({
        "pretrain_speakers": ["a", "b"], "finetune_speakers": ["c", "d"], "zero_shot_speakers": ["e"],
        "utterances": {"pretrain_train": 10, "finetune_train": 4}}), encoding="utf-8")
    for k, (system, mean) in enumerate(means.items()):
        run_dir = work / "exp" / ("pretrain" if system == "pretrained" else f"ft_{system}")
        (run_dir / "log").mkdir(parents=True)
        (run_dir / "log" / "log-train-x").write_text(f"parameters: {1000 * (k + 1)} trainable of 4000 (x %)\n")
        (run_dir / "train_seconds").write_text("12\n")
        (work / "models" / system).mkdir(parents=True)
        (work / "models" / system / "dev_loss.json").write_text(json.dumps({"loss": 1.5 - 0.1 * k}))
        for s in ("finetune_eval", "zero_shot"):
            out = work / "infer" / system / s
            out.mkdir(parents=True)
            sf.write(out / "u1.wav", np.zeros(4800, dtype=np.float32), 24000)
            (out / "metrics.json").write_text(json.dumps({"num_utterances": 1, "mean": mean}))
    return work


def test_report_step_writes_table_plot_and_page(tmp_path):
    values = {"pretrained": (6.0, 0.50), "full": (5.0, 0.20), "lora": (5.5, 0.45)}
    work = write_study(tmp_path, {system: {"mcd": mcd, "f0_rmse_cents": 100.0 * k, "sim": sim}
                                  for k, (system, (mcd, sim)) in enumerate(values.items())})
    md, report = tmp_path / "RESULTS.md", tmp_path / "report"
    r = run("study_report.py", "--work-dir", work, "--systems", "pretrained,full,lora", "--results-md", md,
            "--report-dir", report, "--pretrain-iters", 40, "--finetune-iters", 10)
    assert r.returncode == 0, r.stderr
    table = [line for line in read_section(md, "study").splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 3  # header + one row per system
    assert table[2].startswith("| full | 2,000 (50.0 %) | 10 | 12 | 1.4000 | 5.00 | 100.0 | 0.200 | 0.200 |")
    assert "PER" not in read_section(md, "study")  # no phone recognizer, no PER
    assert (report / "sim_vs_mcd.png").stat().st_size > 10_000
    page = (report / "index.html").read_text(encoding="utf-8")
    assert page.count("<audio") == 2 * (2 + 3)  # two sets x (prompt, ground truth, three systems)


@needs_chromium
def test_report_shows_per_and_its_ceiling(tmp_path):
    """With PER in the metrics: PER columns for both sets and a ground-truth row, in RESULTS.md and in the
    page as Chromium renders it."""
    per = {"pretrained": (61.04, 70.0), "full": (35.55, 72.5)}  # (fine-tuned speakers, unseen speakers)
    means = {}
    for k, (system, (ft, zs)) in enumerate(per.items()):
        means[system] = {"ft": {"mcd": 6.0 - k, "sim": 0.5, "per": ft, "per_gt": 8.31},
                         "zs": {"mcd": 7.0, "sim": 0.4, "per": zs, "per_gt": 12.0}}
    work = write_study(tmp_path, {s: m["ft"] for s, m in means.items()})
    for s, m in means.items():  # the unseen speakers' metrics differ from the fine-tuned ones
        (work / "infer" / s / "zero_shot" / "metrics.json").write_text(json.dumps({"num_utterances": 1,
                                                                                   "mean": m["zs"]}))
    md, report = tmp_path / "RESULTS.md", tmp_path / "report"
    r = run("study_report.py", "--work-dir", work, "--systems", "pretrained,full", "--results-md", md,
            "--report-dir", report)
    assert r.returncode == 0, r.stderr
    table = [line for line in read_section(md, "study").splitlines() if line.startswith("| ")]
    assert table[0].endswith("| PER FT (%) | PER unseen (%) |")
    assert len(table) == 1 + 2 + 1  # header, two systems, the ground-truth recordings
    assert table[1].endswith("| 61.0 | 70.0 |") and table[2].endswith("| 35.5 | 72.5 |")
    assert table[3] == "| ground-truth recordings (PER ceiling) |" + " – |" * 9 + " 8.3 | 12.0 |"
    dom = subprocess.run([CHROMIUM, *HEADLESS, "--dump-dom", (report / "index.html").as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    counter = DomCounter()
    counter.feed(dom.stdout)
    assert counter.tables[0] == 1 + 2 + 1  # header, two systems, the ground-truth row
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", dom.stdout)
    for text in ("PER FT (%)", "PER unseen (%)", "35.5", "72.5", "ground-truth recordings (PER ceiling)", "8.3"):
        assert text in cells, text
    assert "the last row is the PER of the ground-truth recordings" in dom.stdout


def test_run_sh_stage_20_runs_only_the_study(tmp_path):
    """--stage 20 alone reaches local/run_study.sh (here stopped by an option it does not know)."""
    r = subprocess.run(["./run.sh", "--stage", "20", "--data-dir", str(tmp_path), "--study-opts", "--no-such-option 1"],
                       cwd=RECIPE, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Stage 20: fine-tuning trade-off study" in r.stdout and "Stage 0:" not in r.stdout
    assert "run_study.sh: invalid option --no-such-option" in r.stderr
