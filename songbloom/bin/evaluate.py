"""Score generated songs against their lyrics, style prompts and ground-truth recordings.

    python -m songbloom.bin.evaluate --generated-dir exp/generate/base --jsonl data/prepared/songs_test.jsonl \\
        --reference-manifest data/prepared/songs_recordings_test.jsonl.gz \\
        --phone-model-dir exp/sung_phone_recognizer --muq-dir exp/codecs/muq \\
        --system base --results RESULTS.md --report-dir exp/generate/base/report

--jsonl is SongBloom's inference input (``idx``, ``lyrics``, ``prompt_wav`` per line); the
samples of each song are ``--generated-dir/<idx>_s<k>.wav``. Ground-truth recordings
come from --reference-manifest (lhotse) or --reference-dir (``<idx>.wav``). Metrics per
sample (docs/songbloom_evaluation.md), each with the ground truth's value beside it:

* PER (%): the phone recognizer (--phone-model-dir; a recognizer trained on sung phrases,
  songbloom.bin.prepare_sung_phone_corpus) on the sample, in windows cut at its rests (at
  most --per-window seconds), against the phones of the sung lyrics;
* style SIM: cosine of the mean-pooled MuQ features (--muq-dir, --muq-layer) of the prompt
  and of the sample; FD (MuQ): the Fréchet distance between the MuQ frames of all samples
  and of all ground-truth songs;
* duration, its share of the budget --max-duration, the share of samples over it, and its
  ratio to the ground truth's;
* structure: the lyric's sections laid out over the sample in proportion to their symbol
  counts; a section adheres when a vocal activity detector finds singing in a vocal section
  and none in a non-vocal one (structure acc: the share that adhere);
* CER (%) with --asr-model-dir (a Whisper directory), off by default;
* the training side's dev metrics (--dev-metrics: a JSON object such as
  ``{"sketch_accuracy": 0.41, "flow_loss": 0.83}``), shown as given.

Writes to --report-dir: ``index.html`` (the metric tables and players for the prompt, the
ground truth and every sample), ``scores.tsv`` (one row per sample, a missing or unreadable
sample with its status), ``metrics.json`` (means, counts, the Fréchet distance, settings,
every row); with --results, the summary table as the section ``songbloom-evaluate:SYSTEM`` of
that Markdown file.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import torch

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from songbloom.eval.inputs import (
    find_samples,
    read_dev_metrics,
    read_songs_jsonl,
    references_from_dir,
    references_from_manifest,
    sample_path,
)
from songbloom.eval.scorer import DEFAULT_WINDOW, SongScorer
from songbloom.eval.structure import DEFAULT_MIN_ACTIVE
from songbloom.eval.tables import fmt, markdown, means, summary_rows

logger = get_logger(__name__)
TSV_COLUMNS = ("idx", "sample", "status", "wav", "duration", "budget_use", "over_budget", "duration_ratio_gt",
               "per", "per_gt", "per_errors", "per_ref_phones", "style_sim", "style_sim_gt", "structure_acc",
               "structure_acc_gt", "vocal_active", "nonvocal_active", "cer", "cer_gt", "cer_edits", "cer_ref_chars",
               "per_hyp", "transcript")
GT_KEYS = ("per", "per_errors", "per_ref_phones", "per_hyp", "style_sim", "structure_acc", "vocal_active",
           "nonvocal_active", "cer", "cer_edits", "cer_ref_chars", "transcript", "duration")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m songbloom.bin.evaluate", description=__doc__.split("\n\n")[0],
                       epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--generated-dir", type=Path, required=True, help="folder of the samples <idx>_s<k>.wav (required)")
    p.add_argument("--jsonl", type=Path, required=True,
                   help="SongBloom inference JSONL of the songs (idx, lyrics, prompt_wav) (required)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference-manifest", type=Path, default=None,
                     help="lhotse recordings (or cuts) manifest of the ground-truth songs (default: none)")
    ref.add_argument("--reference-dir", type=Path, default=None,
                     help="folder of ground-truth recordings <idx>.wav or <idx>.flac (default: none)")
    p.add_argument("--phone-model-dir", type=Path, default=None,
                   help="phone recognizer (shirabe.bin.train_phone_recognizer) for PER (default: none, no PER)")
    p.add_argument("--per-window", type=float, default=DEFAULT_WINDOW,
                   help="songs are recognized in windows cut at their rests; a stretch without a rest longer than "
                        "this many seconds is cut at its quietest points (0: the whole song as one utterance)")
    p.add_argument("--muq-dir", type=Path, default=None,
                   help="MuQ checkpoint directory for style SIM and FD (default: none, neither)")
    p.add_argument("--muq-layer", type=int, default=-1, help="MuQ hidden state used (-1: the last)")
    p.add_argument("--asr-model-dir", type=Path, default=None,
                   help="Whisper model directory (Hugging Face format) for CER (default: none, no CER)")
    p.add_argument("--asr-language", default="ja", help="Whisper language token for --asr-model-dir")
    add_bool_argument(p, "--cer-kana", True, "compare katakana readings in the CER (kana lyrics vs kanji transcripts)")
    p.add_argument("--dev-metrics", type=Path, default=None,
                   help="JSON object of the training side's dev metrics (sketch_accuracy, flow_loss, ...) to show "
                        "(default: none)")
    p.add_argument("--max-duration", type=float, default=150.0, help="the generation budget in seconds")
    p.add_argument("--samples", type=int, default=0,
                   help="samples expected per song (s0..sN-1; missing ones are reported); 0: those found")
    p.add_argument("--min-active", type=float, default=DEFAULT_MIN_ACTIVE,
                   help="share of active frames from which a section counts as sung")
    p.add_argument("--system", default=None, help="name of the evaluated system (default: the --generated-dir name)")
    p.add_argument("--results", type=Path, default=None,
                   help="Markdown file (RESULTS.md) that receives the summary table as a section (default: none)")
    p.add_argument("--report-dir", type=Path, required=True,
                   help="folder of index.html, scores.tsv and metrics.json (required)")
    add_num_threads_argument(p)
    add_device_argument(p, "MuQ, the phone recognizer and the ASR model")
    add_verbose_argument(p)
    return p


def check_args(args) -> None:
    if not args.generated_dir.is_dir():
        raise InputError(f"{args.generated_dir}: no such directory of generated songs")
    if args.max_duration <= 0:
        raise InputError(f"--max-duration must be positive, got {args.max_duration}")
    if args.per_window < 0:
        raise InputError(f"--per-window must not be negative, got {args.per_window}")
    if args.samples < 0:
        raise InputError(f"--samples must not be negative, got {args.samples}")
    if not 0 < args.min_active <= 1:
        raise InputError(f"--min-active must lie in (0, 1], got {args.min_active}")


def load_models(args, device):
    """(phone judge, MuQ, ASR), each None when not asked for."""
    judge = muq = asr = None
    if args.phone_model_dir is not None:
        from shirabe.eval.per import PhoneJudge

        judge = PhoneJudge.load(args.phone_model_dir, device)
    if args.muq_dir is not None:
        from shirabe.ssl import load_muq

        try:
            muq = load_muq(args.muq_dir, device)
        except InputError as e:
            raise InputError(f"--muq-dir {e}") from e
        depth = len(muq.model.conformer.layers)
        if not -(depth + 1) <= args.muq_layer <= depth:
            raise InputError(f"--muq-layer {args.muq_layer}: the model has hidden states 0..{depth}")
    if args.asr_model_dir is not None:
        from shirabe.eval.asr import WhisperASR

        asr = WhisperASR(args.asr_model_dir, language=args.asr_language, device=device)
    return judge, muq, asr


def lyric_facts(items, judge) -> dict[str, dict]:
    """Per song: the sung text, its reference phones (with a judge) and the sections' (vocal, symbols)."""
    from songbloom.eval.lyrics import section_symbols, sung_text
    from songbloom.g2p import LyricError

    out = {}
    for it in items:
        text = sung_text(it.lyrics)
        try:
            sections = [(vocal, n) for _, vocal, n in section_symbols(it.lyrics)]
        except LyricError as e:
            raise InputError(f"{it.where}: lyrics: {str(e).splitlines()[0]}") from None
        phones = judge.text_reference(text, f"{it.where}: lyrics") if judge is not None and text else None
        out[it.idx] = {"text": text, "sections": sections, "phones": phones}
    return out


def read_mono(path: Path):
    """``(samples, rate)`` or an error string."""
    from shirabe.audio import load_audio

    try:
        return load_audio(path)
    except InputError as e:
        msg = str(e)
        return msg[len(str(path)) + 2:] if msg.startswith(f"{path}: ") else msg


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def tsv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def tsv_text(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=TSV_COLUMNS, delimiter="\t", extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: tsv_cell(r.get(k)) for k in TSV_COLUMNS})
    return buf.getvalue()


def evaluate(args, items, references, scorer, facts) -> tuple[list[dict], dict, list, list]:
    """Rows of every sample, ground-truth metrics per song, and the MuQ frames of samples and references."""
    gen_frames, ref_frames, gt = [], [], {}
    rows = []
    for it in items:
        f = facts[it.idx]
        prompt = None
        if scorer.muq is not None:
            if it.prompt_wav.is_file():
                try:
                    prompt = scorer.prompt_frames(it.prompt_wav)
                except InputError as e:
                    raise InputError(f"{it.where}: prompt_wav: {e}") from None
            else:
                logger.warning("%s: prompt %s missing: no style SIM for %s", it.where, it.prompt_wav, it.idx)
        gt_row = {}
        ref = references.get(it.idx)
        if ref is not None:
            audio = read_mono(ref)
            if isinstance(audio, str):
                logger.warning("%s: ground truth %s unreadable (%s)", it.idx, ref, audio)
            else:
                gt_row, frames = scorer.score(audio[0], audio[1], f["text"], f["phones"], f["sections"], prompt)
                if frames is not None:
                    ref_frames.append(frames)
        gt[it.idx] = gt_row
        found, missing = find_samples(args.generated_dir, it.idx, args.samples)
        if not found and not missing:
            rows.append({"idx": it.idx, "sample": "–", "status": f"missing: no {it.idx}_s<k>.wav in "
                         f"{args.generated_dir}", "wav": ""})
            logger.warning("%s: no generated sample (%s_s<k>.wav) in %s", it.idx, it.idx, args.generated_dir)
        for k in sorted(set(found) | set(missing)):
            path = found.get(k) or sample_path(args.generated_dir, it.idx, k)
            row = {"idx": it.idx, "sample": f"s{k}", "wav": str(path)}
            if k not in found:
                rows.append({**row, "status": f"missing: {path}"})
                logger.warning("%s s%d: missing %s", it.idx, k, path)
                continue
            audio = read_mono(path)
            if isinstance(audio, str):
                row["status"] = f"unreadable: {audio}"
                logger.warning("%s s%d: %s unreadable (%s)", it.idx, k, path, audio)
                rows.append(row)
                continue
            metrics, frames = scorer.score(audio[0], audio[1], f["text"], f["phones"], f["sections"], prompt,
                                           gt_row.get("duration"))
            row.update(metrics, status="ok")
            row.update({f"{key}_gt": gt_row.get(key) for key in ("per", "style_sim", "structure_acc", "cer")})
            if frames is not None:
                gen_frames.append(frames)
            rows.append(row)
            logger.info("%s s%d: %.1f s%s%s%s", it.idx, k, row["duration"],
                        "" if row.get("per") is None else f", PER {row['per']:.1f} %",
                        "" if row.get("style_sim") is None else f", style SIM {row['style_sim']:.3f}",
                        "" if row.get("structure_acc") is None else f", structure {row['structure_acc']:.2f}")
    return rows, gt, gen_frames, ref_frames


def frechet(gen_frames: list, ref_frames: list) -> dict | None:
    import numpy as np

    from songbloom.eval.metrics import frechet_of_frames

    if not gen_frames or not ref_frames:
        return None
    a, b = np.concatenate(gen_frames), np.concatenate(ref_frames)
    if len(a) < 2 or len(b) < 2:
        return None
    out = frechet_of_frames(a, b)
    out.update(songs_generated=len(gen_frames), songs_reference=len(ref_frames), dims=int(a.shape[1]))
    return out


def report(args, system, items, references, rows, gt, headers, table_rows, dev, fd, facts) -> Path:
    from shirabe.eval.report import AudioRow, AudioSection, Table, write_report

    tables = [Table(f"{system}: means over the samples; the last row is the ground-truth recordings (the ceiling)",
                    headers, table_rows)]
    if fd is not None:
        tables.append(Table("Fréchet distance on MuQ frames (generated vs ground truth)",
                            ["FD", "mean-term bias", "frames generated", "frames reference", "songs generated",
                             "songs reference", "dims"],
                            [[fmt(fd["fd"], 2), fmt(fd["mean_bias"], 3), str(fd["frames_1"]), str(fd["frames_2"]),
                              str(fd["songs_generated"]), str(fd["songs_reference"]), str(fd["dims"])]]))
    if dev:
        tables.append(Table("dev metrics (training side)", ["metric", "value"],
                            [[k, fmt(v, 4)] for k, v in dev.items()]))
    per_sample = [[r["idx"], r["sample"], r["status"], fmt(r.get("duration"), 1), fmt(r.get("per"), 1),
                   fmt(gt.get(r["idx"], {}).get("per"), 1), fmt(r.get("style_sim"), 3),
                   fmt(r.get("structure_acc"), 2), fmt(r.get("cer"), 1)] for r in rows]
    tables.append(Table("per sample", ["song", "sample", "status", "duration (s)", "PER (%)", "PER GT (%)",
                                       "style SIM", "structure acc", "CER (%)"], per_sample))
    ks = sorted({r["sample"] for r in rows if r["sample"] != "–"}, key=lambda s: int(s[1:]))
    audio_rows = []
    for it in items:
        audio = {"prompt": it.prompt_wav, "ground truth": references.get(it.idx)}
        for r in rows:
            if r["idx"] == it.idx and r["status"] == "ok":
                audio[r["sample"]] = Path(r["wav"])
        audio_rows.append(AudioRow(it.idx, facts[it.idx]["text"], audio))
    intro = ("PER: phone error rate of the sung lyrics by the phone recognizer "
             f"{args.phone_model_dir or '(none)'}; style SIM: cosine of mean-pooled MuQ layer {args.muq_layer} "
             "features of prompt and song; FD: Fréchet distance of MuQ frames, generated vs ground truth; structure "
             "acc: share of lyric sections (laid out by symbol counts) where vocal activity matches; budget: "
             f"--max-duration {args.max_duration:g} s. See docs/songbloom_evaluation.md.")
    return write_report(args.report_dir, f"SongBloom evaluation: {system}", intro=intro, tables=tables,
                        audio_sections=[AudioSection("songs", ["prompt", "ground truth", *ks], audio_rows)])


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(max(1, args.num_threads))
    check_args(args)

    items = read_songs_jsonl(args.jsonl)
    ids = [it.idx for it in items]
    references = {}
    if args.reference_manifest is not None:
        references = references_from_manifest(args.reference_manifest, ids)
    elif args.reference_dir is not None:
        references = references_from_dir(args.reference_dir, ids)
    if (args.reference_manifest or args.reference_dir) and len(references) < len(ids):
        logger.warning("no ground truth for %d of %d songs: %s", len(ids) - len(references), len(ids),
                       ", ".join(i for i in ids if i not in references))
    dev = read_dev_metrics(args.dev_metrics) if args.dev_metrics is not None else {}
    device = resolve_device(args.device)
    judge, muq, asr = load_models(args, device)
    facts = lyric_facts(items, judge)
    scorer = SongScorer(judge=judge, muq=muq, muq_layer=args.muq_layer, asr=asr, cer_kana=args.cer_kana,
                        window=args.per_window, max_duration=args.max_duration, min_active=args.min_active)
    system = args.system or args.generated_dir.name
    logger.info("evaluating %s: %d songs of %s (%d with ground truth)%s%s%s", system, len(items), args.jsonl,
                len(references), ", PER" if judge else "", ", MuQ" if muq else "", ", CER" if asr else "")
    rows, gt, gen_frames, ref_frames = evaluate(args, items, references, scorer, facts)

    ok = [r for r in rows if r["status"] == "ok"]
    mean, count = means(ok)
    gt_rows = [g for g in gt.values() if g]
    gt_mean, gt_count = means(gt_rows)
    fd = frechet(gen_frames, ref_frames)
    if fd is not None:
        mean["fd"], count["fd"] = fd["fd"], fd["songs_generated"]
    num = {"songs": len(items), "samples": len(ok), "missing": len(rows) - len(ok), "gt_songs": len(gt_rows)}
    headers, table_rows = summary_rows(system, mean, gt_mean, num, list(dev), dev)
    summary_md = markdown(headers, table_rows)

    result = {"system": system, **num, "mean": mean, "count": count, "ground_truth": {"mean": gt_mean,
                                                                                    "count": gt_count},
              "frechet": fd, "dev_metrics": dev, "items": rows,
              "ground_truth_songs": {k: v for k, v in gt.items() if v},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
}}
    args.report_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(args.report_dir / "metrics.json", json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    write_atomic(args.report_dir / "scores.tsv", tsv_text(rows))
    index = report(args, system, items, references, rows, gt, headers, table_rows, dev, fd, facts)
    if judge is not None:
        from shirabe.eval.per import per_summary

        logger.info("%s: %s over %d samples", system, per_summary(mean.get("per"), gt_mean.get("per")),
                    count.get("per", 0))
    if fd is not None:
        logger.info("%s: FD %.3f on MuQ layer %d (%d vs %d frames; mean-term bias %.3f)", system, fd["fd"],
                    args.muq_layer, fd["frames_1"], fd["frames_2"], fd["mean_bias"])
    if args.results is not None:
        from shirabe.eval.results_md import upsert_section

        body = (f"## SongBloom evaluation: {system}\n\n{summary_md}\n\n"
                f"Songs `{args.jsonl}`, samples `{args.generated_dir}`; per sample `{args.report_dir / 'scores.tsv'}`, "
                f"page `{index}`. Ground truth (ceiling): the same metrics on the real recordings. PER and CER are "
                "corpus rates in %; FD is over all MuQ frames (biased upwards for few frames, "
                "docs/songbloom_evaluation.md).")
        upsert_section(args.results, f"songbloom-evaluate:{system}", body)
        logger.info("updated %s", args.results)
    logger.info("wrote %s, %s and %s", index, args.report_dir / "scores.tsv", args.report_dir / "metrics.json")
    return 0


if __name__ == "__main__":
    run_main(main)
