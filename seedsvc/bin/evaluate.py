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
* speaker similarity: CAM++ cosine between the output and the reference.
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
    add_device_argument(p, "CAM++ and a neural F0 tracker")
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
        for k in ("source_f0", "reference", "target"):
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


def fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else (f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}")


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
    results, per_file = {}, []
    for name, d in systems:
        scores = []
        for row in rows:
            out = d / row["output"]
            if not out.is_file():
                raise InputError(f"{out}: converted file missing (system {name}, job {row['id']})")
            s = score(row, out, args.f0_method, encoder, device)
            scores.append((row, s))
            per_file.append({"system": name, "id": row["id"], "shift": row["shift"], **s})
            logger.info("%s %s: F0 RMSE %.1f cents, MCD %.2f dB", name, row["id"], s["f0_rmse_cents"], s["mcd_db"])
        results[name] = scores
    lines = [f"# {args.title}", ""]
    shifts = sorted({float(r["shift"]) for r in rows})
    for label, keep in [("all conversions", None)] + [(f"shift {s:+g} st", s) for s in shifts]:
        lines += [f"## {label}", "", "| system | n | " + " | ".join(LABELS[m] for m in METRICS) + " |",
                  "|---|---|" + "---|" * len(METRICS)]
        for name, scores in results.items():
            sel = [s for r, s in scores if keep is None or float(r["shift"]) == keep]
            means = [float(np.nanmean([s[m] for s in sel])) if sel and any(np.isfinite(s[m]) for s in sel)
                     else float("nan") for m in METRICS]
            lines.append(f"| {name} | {len(sel)} | " + " | ".join(fmt(v) for v in means) + " |")
        lines.append("")
    args.output_md.parent.mkdir(parents=True, exist_ok=True)
    args.output_md.write_text("\n".join(lines), encoding="utf-8")
    if args.output_tsv:
        with args.output_tsv.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["system", "id", "shift", *METRICS], delimiter="\t")
            w.writeheader()
            w.writerows(per_file)
    summary = {name: {m: float(np.nanmean([s[m] for _, s in sc])) for m in METRICS} for name, sc in results.items()}
    (args.output_md.with_suffix(".json")).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info("wrote %s", args.output_md)
    return 0


if __name__ == "__main__":
    run_main(main)
