#!/usr/bin/env python3
"""Summarise the fine-tuning study: the RESULTS.md table, the SIM-vs-MCD plot and the HTML report.

Reads what ``local/run_study.sh`` left in ``--work-dir``: ``lists/split.json``, per system
``models/<system>/dev_loss.json`` and ``infer/<system>/{finetune_eval,zero_shot}/metrics.json``,
and per training run ``exp/<run>/train_seconds`` and its training log (trainable parameters).
Writes the study section of ``--results-md`` (one row per system), ``<report-dir>/sim_vs_mcd.png``
and ``<report-dir>/index.html`` (metrics table, plot, audio players for prompt / ground truth /
every system). Where the evaluations have a phone error rate (``run_study.sh --phone-model-dir``),
the table has PER columns for both speaker sets and a last row with the PER of the ground-truth
recordings: the ceiling of what the recognizer can give.

Example:
  local/study_report.py --work-dir exp/study --systems pretrained,full,lora --report-dir exp/report
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
from pathlib import Path

from shirabe.cli import ArgumentParser, InputError, run_main, setup_logging
from shirabe.eval.plot import scatter_png
from shirabe.eval.report import AudioRow, AudioSection, Table, write_report
from shirabe.eval.results_md import upsert_section

SETS = {"finetune_eval": "fine-tuned speakers (held-out sentences)", "zero_shot": "unseen speakers (zero-shot)"}
PARAMS_LINE = re.compile(r"parameters: (\d+) trainable of (\d+)")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="study_report.py", description=__doc__)
    p.add_argument("--work-dir", type=Path, required=True, help="the study's --work-dir (required)")
    p.add_argument("--systems", required=True, help="comma-separated systems, 'pretrained' first (required)")
    p.add_argument("--results-md", type=Path, default=Path("RESULTS.md"), help="Markdown file to update")
    p.add_argument("--report-dir", type=Path, default=Path("exp/report"), help="where index.html goes")
    p.add_argument("--pretrain-iters", type=int, default=None, help="pretraining batches (for the table)")
    p.add_argument("--finetune-iters", type=int, default=None, help="fine-tuning batches (for the table)")
    p.add_argument("--elapsed", type=int, default=None, help="wall time of the study run in seconds")
    p.add_argument("--report-items", type=int, default=3,
                   help="test items with players per set (spread evenly over the test list)")
    return p


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: missing (run local/run_study.sh first)")
    return json.loads(path.read_text(encoding="utf-8"))


def trainable_params(exp: Path) -> tuple[int, int] | None:
    found = None
    for log in sorted((exp / "log").glob("log-train-*")):
        for m in PARAMS_LINE.finditer(log.read_text(encoding="utf-8", errors="replace")):
            found = (int(m.group(1)), int(m.group(2)))
    return found


def fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def collect(args) -> list[dict]:
    rows = []
    for system in args.systems.split(","):
        run = args.work_dir / "exp" / ("pretrain" if system == "pretrained" else f"ft_{system}")
        metrics = {s: read_json(args.work_dir / "infer" / system / s / "metrics.json") for s in SETS}
        seconds = run / "train_seconds"
        rows.append({
            "system": system,
            "params": trainable_params(run),
            "steps": args.pretrain_iters if system == "pretrained" else args.finetune_iters,
            "seconds": int(seconds.read_text()) if seconds.is_file() else None,
            "val_loss": read_json(args.work_dir / "models" / system / "dev_loss.json")["loss"],
            "ft": metrics["finetune_eval"]["mean"],
            "zs": metrics["zero_shot"]["mean"],
            "n": {s: metrics[s]["num_utterances"] for s in SETS},
        })
    return rows


def table(rows: list[dict]) -> Table:
    headers = ["system", "trainable params", "steps", "train time (s)", "val loss (FT dev)", "MCD FT (dB)",
               "log-F0 RMSE FT (cents)", "SIM FT", "SIM unseen", "MCD unseen (dB)"]
    has_cer = any("cer" in r["zs"] for r in rows)
    if has_cer:
        headers += ["CER FT", "CER unseen"]
    has_per = any("per" in r[s] for r in rows for s in ("ft", "zs"))
    if has_per:
        headers += ["PER FT (%)", "PER unseen (%)"]
    out = []
    for r in rows:
        params = "–" if r["params"] is None else f"{r['params'][0]:,} ({100 * r['params'][0] / r['params'][1]:.1f} %)"
        label = "pretrained (no fine-tuning)" if r["system"] == "pretrained" else r["system"]
        cells = [label, params, str(r["steps"] or "–"), str(r["seconds"] if r["seconds"] is not None else "–"),
                 fmt(r["val_loss"], 4), fmt(r["ft"].get("mcd"), 2), fmt(r["ft"].get("f0_rmse_cents"), 1),
                 fmt(r["ft"].get("sim")), fmt(r["zs"].get("sim")), fmt(r["zs"].get("mcd"), 2)]
        if has_cer:
            cells += [fmt(r["ft"].get("cer")), fmt(r["zs"].get("cer"))]
        if has_per:
            cells += [fmt(r["ft"].get("per"), 1), fmt(r["zs"].get("per"), 1)]
        out.append(cells)
    if has_per:  # the recognizer on the recordings themselves (the same for every system)
        ceiling = {s: next((r[s]["per_gt"] for r in rows if r[s].get("per_gt") is not None), None) for s in ("ft", "zs")}
        out.append(["ground-truth recordings (PER ceiling)"] + ["–"] * (len(headers) - 3)
                   + [fmt(ceiling["ft"], 1), fmt(ceiling["zs"], 1)])
    return Table("Fine-tuning strategies: fit to the fine-tuned speakers vs zero-shot similarity", headers, out)


def markdown(t: Table) -> str:
    lines = ["| " + " | ".join(t.headers) + " |", "|---|" + "---:|" * (len(t.headers) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    return "\n".join(lines)


def read_pairs(path: Path) -> dict[str, list[str]]:
    return {line.split("\t")[0]: line.split("\t")[1:] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()}


def audio_sections(args, systems: list[str]) -> list[AudioSection]:
    sections = []
    for s, title in SETS.items():
        lists = args.work_dir / "lists" / s
        tests = read_pairs(lists / "test_list.tsv")
        truth = read_pairs(lists / "ground_truth.tsv") if (lists / "ground_truth.tsv").is_file() else {}
        rows = []
        ids = list(tests)
        n = min(args.report_items, len(ids))
        picks = sorted({round(k * (len(ids) - 1) / max(n - 1, 1)) for k in range(n)})  # spread over the list
        for utt in (ids[k] for k in picks):
            _prompt_text, prompt_wav, text = tests[utt]
            audio = {"prompt": Path(prompt_wav), "ground truth": Path(truth[utt][0]) if utt in truth else None}
            audio.update({sys_: args.work_dir / "infer" / sys_ / s / f"{utt}.wav" for sys_ in systems})
            rows.append(AudioRow(utt, text, audio))
        sections.append(AudioSection(title, ["prompt", "ground truth", *systems], rows))
    return sections


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    split = read_json(args.work_dir / "lists" / "split.json")
    rows = collect(args)
    t = table(rows)
    args.report_dir.mkdir(parents=True, exist_ok=True)
    png = scatter_png([(r["system"], r["ft"].get("mcd"), r["zs"].get("sim")) for r in rows],
                      args.report_dir / "sim_vs_mcd.png", "MCD on the fine-tuned speakers (dB, lower is better)",
                      "SIM to the prompt, unseen speakers (higher is better)",
                      title="What fine-tuning buys (left) and costs (down)")
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    u = split["utterances"]
    setup = (f"Pretrained on {len(split['pretrain_speakers'])} speakers ({u['pretrain_train']} utterances), "
             f"fine-tuned on {', '.join(split['finetune_speakers'])} ({u['finetune_train']} utterances), "
             f"evaluated on {rows[0]['n']['finetune_eval']} held-out sentences of the fine-tuned speakers "
             f"(MCD, log-F0 RMSE against their recordings) and {rows[0]['n']['zero_shot']} zero-shot syntheses "
             f"for the unseen speakers {', '.join(split['zero_shot_speakers'])} (SIM: CAM++ cosine to the prompt).")
    cost = (f"Report of {when}, {os.cpu_count()} CPU(s)"
            + (f", {args.elapsed} s of wall time for this invocation" if args.elapsed is not None else "") + ".")
    n_ft, n_zs = rows[0]["n"]["finetune_eval"], rows[0]["n"]["zero_shot"]
    counts = str(n_ft) if n_ft == n_zs else f"{n_ft} (fine-tuned speakers) or {n_zs} (unseen speakers)"
    per_note = ("PER: phone error rate (%) of the syntheses against their texts by the phone recognizer "
                "(docs/phone_recognizer.md); the last row is the PER of the ground-truth recordings, the "
                "best a synthesis can expect from this recognizer."
                if any("per" in r[s] for r in rows for s in ("ft", "zs")) else "")
    body = (f"## Fine-tuning trade-off study\n\n{setup} {cost}\n\n{markdown(t)}\n\n"
            f"Plot: `{png}`; report with audio: `{args.report_dir / 'index.html'}`. "
            "Train time is the wall time of the training run (other runs may have shared the CPU). "
            f"Each metric is a mean over {counts} utterances of one noise seed: "
            "small differences between systems are not significant "
            "(raise --eval-per-speaker for tighter estimates)." + (f" {per_note}" if per_note else ""))
    upsert_section(args.results_md, "study", body)
    sections = audio_sections(args, [r["system"] for r in rows])
    intro = f"{setup}\n\n{cost}" + (f"\n\n{per_note}" if per_note else "")
    index = write_report(args.report_dir, "ZipVoice-ja fine-tuning study", intro=intro, tables=[t],
                         images=[("SIM on unseen speakers vs MCD on the fine-tuned speakers", png)],
                         audio_sections=sections)
    print(f"{args.results_md}: study table ({len(rows)} systems); {png}; {index}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
