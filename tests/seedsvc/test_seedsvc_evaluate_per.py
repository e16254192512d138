"""seedsvc.bin.evaluate --phone-model-dir: PER of each conversion against its source's lyrics, the source's
own PER as the ceiling; and the lyrics that make_conversion_jobs.py keeps beside each excerpt."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from seedsvc.content.labels import read_timings, write_timings
from shirabe.asr.phones import TextPhones

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asr"))
from recognizer_testlib import fitted_recognizer  # noqa: E402

RECIPE = Path(__file__).resolve().parents[2] / "egs" / "seedsvc"


def test_per_columns_and_source_ceiling(mini_speech, tmp_path_factory, tmp_path):
    model = fitted_recognizer(tmp_path_factory.getbasetemp(), mini_speech)
    (_, text_a, wav_a), (_, text_b, wav_b) = [line.split("\t")[:3] for line in
                                              (mini_speech / "train.tsv").read_text(encoding="utf-8").splitlines()[:2]]
    src = tmp_path / "sources"
    src.mkdir()
    shutil.copy(wav_a, src / "a.wav")  # lyrics: the job's text column
    shutil.copy(wav_b, src / "b.wav")  # lyrics: phone timings beside the source
    shutil.copy(wav_a, src / "c.wav")  # no lyrics
    phones_b = TextPhones(quiet=True)(text_b)
    write_timings(src / "b.phones.tsv", [(0.0, 0.1, "sil")] + [(0.1 + 0.1 * k, 0.2 + 0.1 * k, p)
                                                                for k, p in enumerate(phones_b)] + [(9.0, 9.5, "sil")])
    np.save(src / "f0.npy", np.full(300, 200.0))
    out = tmp_path / "sys"
    out.mkdir()
    shutil.copy(src / "a.wav", out / "a.wav")  # a conversion that returns its source
    audio, sr = sf.read(src / "b.wav", dtype="float32")
    sf.write(out / "b.wav", np.zeros_like(audio), sr)  # one that returns silence
    shutil.copy(src / "c.wav", out / "c.wav")
    jobs = tmp_path / "jobs.tsv"
    jobs.write_text("id\tsource\treference\toutput\tshift\tsource_f0\ttarget\ttext\n"
                    f"a\tsources/a.wav\tsources/a.wav\ta.wav\t0\tsources/f0.npy\t\t{text_a}\n"
                    "b\tsources/b.wav\tsources/a.wav\tb.wav\t0\tsources/f0.npy\t\t\n"
                    "c\tsources/c.wav\tsources/a.wav\tc.wav\t0\tsources/f0.npy\t\t\n", encoding="utf-8")
    md, tsv = tmp_path / "results.md", tmp_path / "results.tsv"
    r = subprocess.run([sys.executable, "-m", "seedsvc.bin.evaluate", "--jobs", str(jobs), "--system", f"s={out}",
                        "--output-md", str(md), "--output-tsv", str(tsv), "--no-speaker-sim", "true",
                        "--phone-model-dir", str(model), "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = {row["id"]: row for row in csv.DictReader(f, delimiter="\t")}
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert int(a["per_ref_phones"]) == len(TextPhones(quiet=True)(text_a))
    assert int(b["per_ref_phones"]) == len(phones_b)  # the timings' phones, silence dropped
    # a returns its source: the same phones as the source; the recognizer fits these sentences
    assert a["per"] == a["per_source"] and a["per_hyp"] == a["per_source_hyp"] and float(a["per"]) < 30.0
    # b is silence: nothing recognized, every phone deleted, far above its source
    assert b["per_hyp"] == "" and float(b["per"]) == 100.0 and float(b["per_source"]) < 30.0
    # c has no lyrics: empty PER cells
    assert c["per"] == c["per_source"] == c["per_errors"] == ""
    errors = int(a["per_errors"]) + int(b["per_errors"])
    source_errors = int(a["per_source_errors"]) + int(b["per_source_errors"])
    phones = int(a["per_ref_phones"]) + int(b["per_ref_phones"])
    per, per_source = 100 * errors / phones, 100 * source_errors / phones
    lines = md.read_text(encoding="utf-8").splitlines()
    header = lines[lines.index("## all conversions") + 2]
    assert header.endswith("| PER (%) | source PER (%) | n PER |")
    row = lines[lines.index("## all conversions") + 4]
    assert row.startswith("| s | 3 |") and row.endswith(f"| {per:.1f} | {per_source:.1f} | 2 |")
    summary = json.loads(md.with_suffix(".json").read_text())["s"]
    assert summary["per_count"] == 2
    assert abs(summary["per"] - per) < 1e-9 and abs(summary["per_source"] - per_source) < 1e-9
    assert "1 of 3 jobs have no lyrics" in r.stderr
    assert f"s: PER {per:.1f} % (source {per_source:.1f} %) over 2 of 3 conversions" in r.stderr


def test_excerpts_keep_their_lyrics(tmp_path):
    """make_conversion_jobs.py --max-source-seconds writes the phones sung in each excerpt beside it."""
    data = tmp_path / "data"
    for singer in ("src", "tgt"):
        for song in ("train_song", "test_song"):
            d = data / "songs" / singer
            d.mkdir(parents=True, exist_ok=True)
            sf.write(d / f"{song}.wav", 0.1 * np.sin(np.arange(3 * 8000) / 3.0).astype(np.float32), 8000)
            f0 = np.zeros(300, dtype=np.float32)
            f0[50:250] = 220.0  # sung from 0.5 s: excerpts start 50 ms earlier, at 0.45 s
            np.save(d / f"{song}.f0.npy", f0)
            write_timings(d / f"{song}.phones.tsv", [(0.5, 0.6, "k"), (0.6, 1.0, "a"), (1.2, 1.3, "s"),
                                                     (1.3, 2.0, "a"), (2.2, 2.9, "N")])
    header = "utt_id\tspeaker\tsong\twav\tf0\tphones\n"
    for name, song in (("train", "train_song"), ("test", "test_song")):
        (data / f"{name}.tsv").write_text(header + "".join(
            f"{s}-{song}\t{s}\t{song}\tsongs/{s}/{song}.wav\tsongs/{s}/{song}.f0.npy\tsongs/{s}/{song}.phones.tsv\n"
            for s in ("src", "tgt")), encoding="utf-8")
    r = subprocess.run([sys.executable, str(RECIPE / "local" / "make_conversion_jobs.py"), "--data-dir", str(data),
                        "--output-dir", str(tmp_path / "convert"), "--pairs", "src:tgt:-12",
                        "--max-source-seconds", "1.0", "--reference-seconds", "0.5"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    excerpt = tmp_path / "convert" / "excerpts" / "src" / "test_song.phones.tsv"
    # the excerpt spans 0.45-1.45 s of the song: phones whose middle lies in it, shifted by -0.45 s and cut at its end
    got = [(round(s, 4), round(e, 4), p) for s, e, p in read_timings(excerpt)]
    assert got == [(0.05, 0.15, "k"), (0.15, 0.55, "a"), (0.75, 0.85, "s")]
    with (tmp_path / "convert" / "jobs.tsv").open(encoding="utf-8", newline="") as f:
        sources = {row["source"] for row in csv.DictReader(f, delimiter="\t")}
    assert sources == {str(excerpt.with_suffix("").with_suffix(".wav"))}
