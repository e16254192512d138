"""Objective metrics of zero-shot syntheses: speaker similarity, MCD, log-F0, duration, CER.

Reads the test list given to ``infer_zipvoice`` (``{id}\\t{prompt_text}\\t{prompt_wav}\\t{text}``)
and the outputs ``--wav-dir/{id}.wav``. Ground-truth recordings (``{id}\\t{wav}``, as
``egs/zipvoice_ja/local/make_zero_shot_list.py --ground-truth`` writes them; by default
``ground_truth.tsv`` beside the test list, when it exists) add MCD, log-F0 RMSE and
correlation, V/UV error and the duration ratio; a local Whisper model directory adds CER;
a phone recognizer directory (``shirabe.bin.train_phone_recognizer``) adds the phone error rate.

    python -m zipvoice.bin.evaluate --test-list exp/infer/m/test_list.tsv --wav-dir exp/infer/m \\
        [--asr-model-dir whisper-ja] [--phone-model-dir exp/phone_recognizer] \\
        --output exp/infer/m/metrics.json [--results-md RESULTS.md]

``--output`` gets ``{"system", "num_utterances", "mean", "count", "utterances": [...],
"settings"}``; each utterance has ``sim`` (prompt vs output) and, where they apply,
``sim_gt``, ``mcd``, ``f0_rmse_cents``, ``log_f0_corr``, ``vuv_error``,
``duration_ratio``, ``transcript``, ``cer``, ``per`` and ``per_gt`` (phone error rates in %
of the output and of the ground truth, the ceiling), None where a metric could not be computed.
With ``--results-md`` the means are written as a table section of that Markdown file
(replaced when the same --system is evaluated again). See docs/zipvoice_evaluation.md.
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
from zipvoice.utils.cli_args import read_test_list

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m zipvoice.bin.evaluate", description=__doc__)
    p.add_argument("--test-list", type=Path, required=True,
                   help="TSV {id}\\t{prompt_text}\\t{prompt_wav}\\t{text} (required)")
    p.add_argument("--wav-dir", type=Path, required=True, help="directory with the outputs {id}.wav (required)")
    p.add_argument("--ground-truth", default="auto",
                   help="TSV {id}\\t{wav} of ground-truth recordings; 'auto': ground_truth.tsv beside "
                        "--test-list if it exists; 'none': no ground truth")
    p.add_argument("--output", type=Path, required=True, help="metrics JSON to write (required)")
    p.add_argument("--system", default=None, help="name of the evaluated system (default: the --wav-dir name)")
    p.add_argument("--asr-model-dir", type=Path, default=None,
                   help="Whisper model directory in Hugging Face format (e.g. a Japanese fine-tune) for CER "
                        "(default: none, no CER)")
    p.add_argument("--asr-language", default="ja", help="Whisper language token for --asr-model-dir")
    p.add_argument("--phone-model-dir", type=Path, default=None,
                   help="phone recognizer directory (shirabe.bin.train_phone_recognizer) for the phone error rate "
                        "of each output and of its ground truth, in %% (default: none, no PER)")
    add_bool_argument(p, "--cer-kana", False,
                      "compare katakana readings (pyopenjtalk) instead of characters")
    p.add_argument("--campplus", type=Path, default=None,
                   help="CAM++ weights (campplus_cn_common.bin); default: $SHIRABE_CAMPPLUS or the venv's copy")
    p.add_argument("--f0-method", choices=("harvest", "crepe"), default="harvest", help="F0 tracker")
    p.add_argument("--results-md", type=Path, default=None,
                   help="also write the mean metrics as a table section of this Markdown file (default: none)")
    p.add_argument("--results-title", default=None,
                   help="heading of that section (default: 'Zero-shot evaluation: SYSTEM')")
    add_num_threads_argument(p)
    add_device_argument(p, "CAM++, the ASR model and the phone recognizer")
    add_verbose_argument(p)
    return p


def read_ground_truth(path: Path) -> dict[str, Path]:
    """``{id: wav}`` from a ``{id}\\t{wav}`` TSV (relative paths: relative to the TSV if that exists)."""
    if not path.is_file():
        raise InputError(f"{path}: no such ground-truth list")
    out: dict[str, Path] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise InputError(f"{path}:{lineno}: expected 2 tab-separated fields (id, wav), got {len(row)}")
            utt, wav = row[0].strip(), Path(row[1].strip())
            if not wav.is_absolute() and not wav.exists() and (path.parent / wav).exists():
                wav = path.parent / wav
            if not wav.is_file():
                raise InputError(f"{path}:{lineno}: no such ground-truth audio file {row[1].strip()!r}")
            out[utt] = wav
    return out


def collect_items(args):
    from shirabe.eval.suite import EvalItem

    rows = read_test_list(args.test_list)
    gt_path = None
    if args.ground_truth == "auto":
        candidate = args.test_list.parent / "ground_truth.tsv"
        gt_path = candidate if candidate.is_file() else None
    elif args.ground_truth != "none":
        gt_path = Path(args.ground_truth)
    ground_truth = read_ground_truth(gt_path) if gt_path is not None else {}
    items = []
    for utt, _prompt_text, prompt_wav, text in rows:
        hyp = args.wav_dir / f"{utt}.wav"
        if not hyp.is_file():
            raise InputError(f"{hyp}: no output for test item {utt!r} of {args.test_list}")
        items.append(EvalItem(utt, Path(prompt_wav), text, hyp, ground_truth.get(utt)))
    return items, gt_path


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(max(1, args.num_threads))
    if not args.wav_dir.is_dir():
        raise InputError(f"{args.wav_dir}: no such directory of outputs")
    items, gt_path = collect_items(args)
    device = resolve_device(args.device)
    phones = None
    if args.phone_model_dir is not None:
        from shirabe.eval.per import PhoneJudge

        phones = PhoneJudge.load(args.phone_model_dir, device)
        for it in items:  # every text's phones are known to the recognizer, before anything is loaded
            phones.text_reference(it.text, f"{args.test_list}: test item {it.utt_id!r}")

    from shirabe.eval.results_md import upsert_section
    from shirabe.eval.suite import Evaluator, evaluate_items, markdown_table
    from shirabe.speaker import load_campplus

    asr = None
    if args.asr_model_dir is not None:
        from shirabe.eval.asr import WhisperASR

        asr = WhisperASR(args.asr_model_dir, language=args.asr_language, device=device)
    evaluator = Evaluator(load_campplus(args.campplus, device=device), asr=asr, f0_method=args.f0_method,
                          cer_kana=args.cer_kana, phones=phones)
    system = args.system or args.wav_dir.name
    logger.info("evaluating %d utterances of %s (%d with ground truth%s%s)", len(items), system,
                sum(it.gt_wav is not None for it in items), ", CER" if asr else "", ", PER" if phones else "")
    result = {"system": system, **evaluate_items(evaluator, items)}
    result["settings"] = {
        "test_list": str(args.test_list), "wav_dir": str(args.wav_dir),
        "ground_truth": None if gt_path is None else str(gt_path),
        "asr_model_dir": None if asr is None else str(args.asr_model_dir),
        "cer_kana": args.cer_kana, "f0_method": args.f0_method,
        "phone_model_dir": None if phones is None else str(args.phone_model_dir),
    }
    write_json(args.output, result)
    summary = ", ".join(f"{k} {v:.3f}" for k, v in result["mean"].items())
    logger.info("wrote %s: %s", args.output, summary)
    if phones is not None:
        from shirabe.eval.per import per_summary

        logger.info("%s", per_summary(result["mean"].get("per"), result["mean"].get("per_gt")))
    if args.results_md is not None:
        title = args.results_title or f"Zero-shot evaluation: {system}"
        body = (f"## {title}\n\n{markdown_table({system: result})}\n\n"
                f"Test list `{args.test_list}`; metrics in `{args.output}`.")
        if phones is not None:
            body += (f" PER: phone error rate (%) of the outputs against their texts by the phone recognizer "
                     f"`{args.phone_model_dir}`; PER ground truth: the same recognizer on the ground-truth "
                     "recordings (the ceiling).")
        upsert_section(args.results_md, f"evaluate:{system}", body)
        logger.info("updated %s", args.results_md)
    return 0


if __name__ == "__main__":
    run_main(main)
