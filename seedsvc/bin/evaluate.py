"""Score SeedSVC conversions and write a results table (Markdown) and per-file TSV.

--jobs is a TSV with a header: id, source_f0 (the source's F0 track, Hz at 100
frames/s, e.g. the score's), shift (semitones the conversion applied),
reference (the target singer's reference recording), target (the same song sung
by the target singer, for MCD; optional) and output (the converted file's path
relative to each system's directory). Each --system NAME=DIR names a directory
holding those outputs.

Metrics, per conversion, then averaged per system and per shift:

* F0 RMSE in Hz and in cents, Pearson correlation (Hz) and raw pitch accuracy
  (share within 50 cents), over frames voiced in both tracks, against
  ``source_f0 · 2^(shift / 12)``; the output's F0 is extracted with --f0-method;
* V/UV error: share of frames whose voicing disagrees;
* MCD-DTW (dB, WORLD mel-cepstrum, silent frames dropped) against the target;
* speaker similarity: CAM++ cosine between the output and the reference;
* with --phone-model-dir (a phone recognizer, docs/phone_recognizer.md): PER, the
  phone error rate (%) of the output against the lyrics of its source, and
  source PER, the same recognizer on the source recording (the ceiling: a
  conversion keeps the source's lyrics). The lyrics are the job's ``text``
  column (read by the Japanese frontend) or, without one, the phone timings
  beside the source (``<source stem>.phones.tsv``, as the mini corpus songs and
  their excerpts keep them; silence dropped). A job with neither has no PER;
  the table's ``n PER`` column counts the conversions that have one. Means of
  PER are corpus rates (summed errors over summed reference phones).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from shirabe.audio import load_audio
from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from shirabe.eval import f0_corr, f0_rmse, mcd_dtw, raw_pitch_accuracy, vuv_error
from shirabe.pitch import METHODS, extract_f0, shift_semitones

logger = get_logger(__name__)
METRICS = ("f0_rmse_hz", "f0_rmse_cents", "f0_corr", "rpa", "vuv_error", "mcd_db", "speaker_sim")
LABELS = {"f0_rmse_hz": "F0 RMSE (Hz)", "f0_rmse_cents": "F0 RMSE (cents)", "f0_corr": "F0 corr",
          "rpa": "RPA (50 c)", "vuv_error": "V/UV err", "mcd_db": "MCD-DTW (dB)", "speaker_sim": "SIM (CAM++)"}
#: per-conversion PER columns of the TSV (with --phone-model-dir)
PER_COLUMNS = ("per", "per_source", "per_errors", "per_ref_phones", "per_source_errors", "per_hyp",
               "per_source_hyp")


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m seedsvc.bin.evaluate", description=__doc__)
    p.add_argument("--jobs", type=Path, required=True, help="conversions to score (required)")
    p.add_argument("--system", action="append", required=True, metavar="NAME=DIR",
                   help="a system and its output directory (repeatable; required)")
    p.add_argument("--output-md", type=Path, required=True, help="Markdown table to write (required)")
    p.add_argument("--output-tsv", type=Path, default=None, help="per-conversion scores (default: not written)")
    p.add_argument("--f0-method", choices=METHODS, default="harvest", help="F0 tracker for the outputs")
    add_bool_argument(p, "--no-speaker-sim", False, "skip CAM++ similarity")
    p.add_argument("--title", default="SeedSVC results", help="heading of the Markdown file")
    p.add_argument("--phone-model-dir", type=Path, default=None,
                   help="phone recognizer directory (shirabe.bin.train_phone_recognizer): PER of each output "
                        "against its source's lyrics, and of the source itself (default: none, no PER)")
    add_device_argument(p, "CAM++, a neural F0 tracker and the phone recognizer")
    add_verbose_argument(p)
    return p


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(f"{path}: no such jobs file")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = ("id", "source_f0", "shift", "reference", "output")
        missing = [c for c in need if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: header lacks {', '.join(missing)}")
        rows = list(reader)
    for r in rows:
        for k in ("source_f0", "reference", "target", "source"):
            if r.get(k):
                r[k] = Path(r[k]) if Path(r[k]).is_absolute() else path.parent / r[k]
    return rows


def score(row: dict, out_path: Path, f0_method: str, encoder, device="cpu") -> dict:
    hyp, sr = load_audio(out_path)
    ref_f0 = shift_semitones(np.load(row["source_f0"], allow_pickle=False).astype(np.float64), float(row["shift"]))
    hyp_f0 = extract_f0(hyp, sr, method=f0_method, device=device)
    s = {"f0_rmse_hz": f0_rmse(ref_f0, hyp_f0, "hz"), "f0_rmse_cents": f0_rmse(ref_f0, hyp_f0, "cents"),
         "f0_corr": f0_corr(ref_f0, hyp_f0), "rpa": raw_pitch_accuracy(ref_f0, hyp_f0),
         "vuv_error": vuv_error(ref_f0, hyp_f0), "mcd_db": float("nan"), "speaker_sim": float("nan")}
    if row.get("target"):
        tgt, tsr = load_audio(row["target"])
        s["mcd_db"] = mcd_dtw(tgt, hyp, tsr, hyp_sr=sr, silence_db=40.0)
    if encoder is not None:
        from shirabe.eval import speaker_similarity

        ref, rsr = load_audio(row["reference"])
        s["speaker_sim"] = speaker_similarity(hyp, ref, sr, rsr, encoder=encoder)
    return s


def lyrics_phones(row: dict, judge, jobs: Path) -> list[str] | None:
    """Reference phones of a job: its ``text``, else the phone timings beside its source, else None."""
    if (row.get("text") or "").strip():
        return judge.text_reference(row["text"].strip(), f"{jobs}: job {row['id']}")
    if row.get("source"):
        timings = Path(row["source"]).with_name(Path(row["source"]).stem + ".phones.tsv")
        if timings.is_file():
            from seedsvc.content.labels import read_timings

            return judge.phone_reference([p for _, _, p in read_timings(timings)], str(timings)) or None
    return None


def score_phones(row: dict, out_path: Path, judge, reference: list[str] | None) -> dict:
    """PER columns of one conversion (None where the job has no lyrics)."""
    from shirabe.eval.per import per_fields

    source = row.get("source") or None
    return {**per_fields(judge.score(out_path, reference), "per"),
            **per_fields(judge.score(source, reference, cache_key=source) if source else None, "per_source")}


def fmt(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def per_means(scores: list[dict]) -> tuple[float | None, float | None, int]:
    """Corpus PER of the outputs and of their sources (%), and how many conversions have one."""
    from shirabe.eval.per import corpus_per

    out, source = corpus_per(scores, "per"), corpus_per(scores, "per_source")
    return (None if out is None else out[0]), (None if source is None else source[0]), (0 if out is None else out[1])


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    rows = read_rows(args.jobs)
    systems = []
    for spec in args.system:
        if "=" not in spec:
            raise InputError(f"--system {spec}: expected NAME=DIR")
        name, d = spec.split("=", 1)
        systems.append((name, Path(d)))
    device = resolve_device(args.device)
    encoder = None
    if not args.no_speaker_sim:
        from shirabe.speaker import load_campplus

        encoder = load_campplus(device=device)
    judge, references = None, {}
    if args.phone_model_dir is not None:
        from shirabe.eval.per import PhoneJudge

        judge = PhoneJudge.load(args.phone_model_dir, device)
        references = {row["id"]: lyrics_phones(row, judge, args.jobs) for row in rows}
        missing = [r["id"] for r in rows if references[r["id"]] is None]
        if missing:
            logger.warning("%d of %d jobs have no lyrics (no text column, no phone timings beside the source): "
                           "no PER for %s", len(missing), len(rows), ", ".join(missing))
    results, per_file = {}, []
    for name, d in systems:
        scores = []
        for row in rows:
            out = d / row["output"]
            if not out.is_file():
                raise InputError(f"{out}: converted file missing (system {name}, job {row['id']})")
            s = score(row, out, args.f0_method, encoder, device)
            if judge is not None:
                s.update(score_phones(row, out, judge, references[row["id"]]))
            scores.append((row, s))
            per_file.append({"system": name, "id": row["id"], "shift": row["shift"], **s})
            logger.info("%s %s: F0 RMSE %.1f cents, MCD %.2f dB%s", name, row["id"], s["f0_rmse_cents"], s["mcd_db"],
                        "" if s.get("per") is None else f", PER {s['per']:.1f} %")
        results[name] = scores
    lines = [f"# {args.title}", ""]
    shifts = sorted({float(r["shift"]) for r in rows})
    per_labels = ["PER (%)", "source PER (%)", "n PER"] if judge is not None else []
    for label, keep in [("all conversions", None)] + [(f"shift {s:+g} st", s) for s in shifts]:
        lines += [f"## {label}", "", "| system | n | " + " | ".join([LABELS[m] for m in METRICS] + per_labels) + " |",
                  "|---|---|" + "---|" * (len(METRICS) + len(per_labels))]
        for name, scores in results.items():
            sel = [s for r, s in scores if keep is None or float(r["shift"]) == keep]
            means = [float(np.nanmean([s[m] for s in sel])) if sel and any(np.isfinite(s[m]) for s in sel)
                     else float("nan") for m in METRICS]
            cells = [fmt(v) for v in means]
            if judge is not None:
                per, source, n = per_means(sel)
                cells += ["n/a" if per is None else f"{per:.1f}", "n/a" if source is None else f"{source:.1f}", str(n)]
            lines.append(f"| {name} | {len(sel)} | " + " | ".join(cells) + " |")
        lines.append("")
    if judge is not None:
        lines += [f"PER: phone error rate (%) of the converted songs against the lyrics of their sources, by the "
                  f"phone recognizer `{args.phone_model_dir}`; source PER: the same recognizer on the source "
                  "recordings (the ceiling); n PER: conversions with lyrics.", ""]
    args.output_md.parent.mkdir(parents=True, exist_ok=True)
    args.output_md.write_text("\n".join(lines), encoding="utf-8")
    if args.output_tsv:
        with args.output_tsv.open("w", encoding="utf-8", newline="") as f:
            columns = ["system", "id", "shift", *METRICS, *(PER_COLUMNS if judge is not None else ())]
            w = csv.DictWriter(f, fieldnames=columns, delimiter="\t", extrasaction="ignore")
            w.writeheader()
            w.writerows(per_file)
    summary = {name: {m: float(np.nanmean([s[m] for _, s in sc])) for m in METRICS} for name, sc in results.items()}
    if judge is not None:
        from shirabe.eval.per import per_summary

        for name, sc in results.items():
            per, source, n = per_means([s for _, s in sc])
            summary[name].update(per=per, per_source=source, per_count=n)
            logger.info("%s: %s over %d of %d conversions", name, per_summary(per, source, "source"), n, len(sc))
    (args.output_md.with_suffix(".json")).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("wrote %s", args.output_md)
    return 0


if __name__ == "__main__":
    run_main(main)
