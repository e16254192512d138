#!/usr/bin/env python3
"""Does ZipVoice training learn speech? A convergence curve on a prepared corpus.

Trains a ZipVoice config with ``zipvoice.bin.train_zipvoice`` (in this process,
so the run is exactly the recipe's training step) and, every ``--eval-every``
updates, measures the checkpoint's raw weights on:

* ``dev_loss``: the flow-matching loss on the dev manifest at the
  deterministic ``t = arange(B)/B`` (``zipvoice.distill.dev_flow_matching_loss``,
  computed here, independently of the loss the trainer optimised);
* ``text_gain``: how much higher (%) that loss is when every dev utterance is
  given another utterance's tokens: near 0 for a model that ignores the text;
* ``mcd``: MCD-DTW (dB) of zero-shot syntheses of held-out sentences against
  their recordings (prompt = another recording of the same unseen speaker);
* ``per``: the phone error rate (%) of those syntheses read by the phone
  recognizer (``shirabe.asr``), beside the recognizer's PER on the recordings
  themselves (``per_gt``, the ceiling).

Everything is resumable: a checkpoint that exists is not trained again (the
next stretch of training resumes exactly from the newest ``checkpoint-B.pt``
with ``--start-batch``), and a point already in ``EXP/convergence.jsonl`` is
not measured again. So the bench can run in the background for hours, be
killed and restarted, or measure a run trained earlier by the recipe (pass the
same training options).

    python bench/zipvoice_convergence.py --data-dir egs/zipvoice_ja/data --exp-dir exp/convergence \\
        --model-config egs/zipvoice_ja/conf/zipvoice_tiny.json --phone-model-dir exp/phone_recognizer \\
        --num-iters 4000 --eval-every 250 --plot docs/images/zipvoice_convergence.png --update docs/benchmarks.md

``--check-per P`` / ``--check-dev-loss-ratio R`` make the command fail (exit 1)
unless the last point reaches PER <= P % or a dev loss <= R times the untrained
model's: the convergence check.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import cpu_name, update_doc  # noqa: E402

from shirabe.cli import (  # noqa: E402
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_num_threads_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)
SECTION = "## ZipVoice convergence"
FEAT_SCALE = 0.1  # the feature scale ZipVoice trains and samples at
SAMPLE_RATE = 24000  # of ZipVoice's output


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="bench/zipvoice_convergence.py", description=__doc__)
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", type=Path, default=ROOT / "egs" / "zipvoice_ja" / "data",
                   help="a recipe's data dir: tokens.txt and fbank/<dataset>_cuts_{train,dev}_tokens.jsonl.gz")
    g.add_argument("--dataset", default="mini", help="manifest prefix under DATA/fbank")
    g.add_argument("--test-list", type=Path, default=None,
                   help="zero-shot list {id}\\t{prompt_text}\\t{prompt_wav}\\t{text} (default: DATA/<dataset>/"
                        "test.tsv paired by egs/zipvoice_ja/local/make_zero_shot_list.py into EXP)")
    g.add_argument("--ground-truth", type=Path, default=None,
                   help="{id}\\t{wav} recordings of the list's texts (default: written beside the default list)")
    g.add_argument("--train-manifest", type=Path, default=None,
                   help="training cuts with tokens (default: DATA/fbank/<dataset>_cuts_train_tokens.jsonl.gz)")
    g.add_argument("--dev-manifest", type=Path, default=None,
                   help="dev cuts with tokens (default: DATA/fbank/<dataset>_cuts_dev_tokens.jsonl.gz)")
    g.add_argument("--token-file", type=Path, default=None, help="token table (default: DATA/tokens.txt)")
    g.add_argument("--recipe-dir", type=Path, default=None,
                   help="where the manifests' relative feature paths start, as in the recipe that wrote them "
                        "(default: the parent of --data-dir)")
    g.add_argument("--num-eval", type=int, default=10,
                   help="synthesised sentences per point, spread over speakers (0: dev loss only)")
    g = p.add_argument_group("training (options of zipvoice.bin.train_zipvoice)")
    g.add_argument("--exp-dir", type=Path, required=True, help="training directory (required)")
    g.add_argument("--model-config", type=Path, default=ROOT / "egs" / "zipvoice_ja" / "conf" / "zipvoice_tiny.json",
                   help="model.json to train")
    g.add_argument("--num-iters", type=int, default=2000, help="updates to train for")
    g.add_argument("--eval-every", type=int, default=250, help="updates between measured points")
    g.add_argument("--max-duration", type=float, default=60, help="seconds of audio per batch")
    g.add_argument("--base-lr", type=float, default=0.02, help="ScaledAdam learning rate")
    g.add_argument("--lr-hours", type=float, default=20, help="Eden decay over this many hours of audio seen")
    g.add_argument("--seed", type=int, default=42, help="training seed")
    g.add_argument("--train-args", default="", help="further options for train_zipvoice, as one string")
    add_bool_argument(g, "--train", True, "train missing checkpoints (false: only measure the ones there)")
    g = p.add_argument_group("measurement")
    g.add_argument("--phone-model-dir", type=Path, default=None,
                   help="phone recognizer (python -m shirabe.bin.train_phone_recognizer); none: no PER")
    g.add_argument("--num-step", type=int, default=16, help="Euler steps of the syntheses")
    g.add_argument("--vocoder-path", default=None, help="Vocos directory (default: Griffin-Lim)")
    add_device_argument(g, "training and measurement")
    add_num_threads_argument(g, default=1)
    g = p.add_argument_group("report")
    g.add_argument("--plot", type=Path, default=None, help="PNG of the curve to write")
    g.add_argument("--update", type=Path, default=None,
                   help=f"Markdown file whose '{SECTION}' section is (re)written with the table")
    g.add_argument("--label", default="", help="names the run in the section heading (one section per label)")
    g.add_argument("--note", default="", help="a line for the report (machine load, what else ran)")
    g.add_argument("--check-per", type=float, default=None, help="fail unless the last point's PER <= this (%%)")
    g.add_argument("--check-dev-loss-ratio", type=float, default=None,
                   help="fail unless the last dev loss <= this times the untrained model's")
    return p


# -- training ----------------------------------------------------------------------------------

def train_command(args, num_iters: int, start_batch: int) -> list[str]:
    argv = [
        "--device", args.device, "--num-threads", str(args.num_threads), "--seed", str(args.seed),
        "--model-config", str(args.model_config), "--token-file", str(args.token_file),
        "--tokenizer", "japanese", "--train-manifest", str(args.train_manifest), "--dev-manifest", str(args.dev_manifest),
        "--exp-dir", str(args.exp_dir), "--num-iters", str(num_iters),
        "--max-duration", str(args.max_duration), "--base-lr", str(args.base_lr), "--lr-hours", str(args.lr_hours),
        "--save-every-n", str(args.eval_every), "--valid-interval", str(args.eval_every), "--keep-last-k", "1000",
        "--average-period", "10", "--num-workers", "0", "--tensorboard", "false",
    ]
    if start_batch > 0:
        argv += ["--start-batch", str(start_batch)]
    return argv + args.train_args.split()


def train_to(args, target: int) -> float:
    """Train until ``checkpoint-<target>.pt`` exists, resuming from the newest earlier one; seconds spent."""
    from zipvoice.bin import train_zipvoice

    done = [b for b in checkpoint_batches(args.exp_dir) if b < target]
    start = max(done, default=0)
    logger.info("training %s: updates %d -> %d", args.exp_dir, start, target)
    t0 = time.perf_counter()
    train_zipvoice.main(train_command(args, target, start))
    return time.perf_counter() - t0


def checkpoint_batches(exp_dir: Path) -> list[int]:
    out = []
    for f in exp_dir.glob("checkpoint-*.pt"):
        try:
            out.append(int(f.stem.split("-", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


# -- measurement ---------------------------------------------------------------------------------

@dataclass
class EvalSet:
    ids: list[str]
    prompt_texts: list[str]
    prompt_wavs: list[str]
    texts: list[str]
    gt_wavs: list[str]


def read_eval_set(args) -> EvalSet:
    from zipvoice.utils.cli_args import read_test_list

    test_list, gt = args.test_list, args.ground_truth
    if test_list is None:
        import subprocess

        test_list, gt = args.exp_dir / "convergence" / "test_list.tsv", args.exp_dir / "convergence" / "ground_truth.tsv"
        if not test_list.is_file():
            tsv = args.data_dir / args.dataset / "test.tsv"
            if not tsv.is_file():
                raise InputError(f"{tsv}: no such file (give --test-list and --ground-truth)")
            subprocess.run([sys.executable, str(ROOT / "egs" / "zipvoice_ja" / "local" / "make_zero_shot_list.py"),
                            "--tsv", str(tsv), "--output", str(test_list), "--ground-truth", str(gt)], check=True)
    if gt is None:
        raise InputError("--test-list needs --ground-truth (the recordings of its texts)")
    rows = read_test_list(test_list)
    truth = read_ground_truth(gt)
    rows = [r for r in rows if r[0] in truth]
    if not rows:
        raise InputError(f"{gt}: no ground truth for any item of {test_list}")
    # spread the chosen items over the speakers: every k-th item
    k = max(1, len(rows) // max(1, args.num_eval))
    rows = rows[::k][: args.num_eval]
    return EvalSet([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                   [truth[r[0]] for r in rows])


def read_ground_truth(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    truth = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise InputError(f"{path}:{n}: expected 2 tab-separated fields (id, wav), got {len(fields)}")
        truth[fields[0]] = fields[1]
    return truth


def dev_batches(args, token_file: Path):
    """The dev batches of ``zipvoice.bin.compute_dev_loss`` (cuts by id, 8 per batch), kept for every point."""
    from zipvoice.bin.compute_dev_loss import batches_of
    from zipvoice.dataset import TokenMapper, ZipVoiceDataset, load_cuts

    return list(batches_of(load_cuts(args.dev_manifest, "dev"), ZipVoiceDataset(TokenMapper(token_file)), 8))


class Meter:
    """Measures checkpoints: dev loss, and MCD/PER of zero-shot syntheses."""

    def __init__(self, args):
        from shirabe.audio.fbank import VocosFbank
        from shirabe.vocoder import load_vocoder
        from zipvoice.tokenizer import get_tokenizer

        self.args = args
        self.device = resolve_device(args.device)
        self.token_file = args.token_file
        self.batches = dev_batches(args, self.token_file)
        self.evalset = self.recognizer = None
        if args.num_eval <= 0:
            return
        self.tokenizer = get_tokenizer("japanese", self.token_file, scheme="prosody")
        self.vocoder = load_vocoder(args.vocoder_path).to(self.device)
        self.fbank = VocosFbank()
        self.evalset = read_eval_set(args)
        if args.phone_model_dir is not None:
            from shirabe.asr import load_recognizer

            self.recognizer = load_recognizer(args.phone_model_dir, device=self.device)

    def model(self, weights: dict | None):
        from zipvoice.models import build_model, read_config, vocab_info

        config = read_config(self.args.model_config)
        vocab_size, pad_id = vocab_info(self.token_file)
        torch.manual_seed(self.args.seed)
        model = build_model(config["model"], vocab_size, pad_id)
        if weights is not None:
            model.load_state_dict(weights, strict=True)
        return model.to(self.device).eval()

    def dev_loss(self, model, mismatched_text: bool = False) -> float:
        """The dev flow-matching loss; with ``mismatched_text`` each utterance gets the tokens of the next one
        in its batch, so the gap between the two says how much the model listens to the text."""
        from zipvoice.distill import dev_flow_matching_loss

        batches = self.batches
        if mismatched_text:
            batches = [dict(b, tokens=b["tokens"][1:] + b["tokens"][:1]) for b in batches]
        return float(dev_flow_matching_loss(model, batches, FEAT_SCALE, seed=0, device=self.device)["loss"])

    def ground_truth_per(self) -> float | None:
        if self.recognizer is None:
            return None
        from shirabe.asr import score

        return 100.0 * score(self.recognizer, self.evalset.gt_wavs, self.evalset.texts).per

    def synthesis(self, model, out_dir: Path) -> dict:
        import soundfile as sf

        from shirabe.audio import load_audio
        from shirabe.eval.mcd import mcd_dtw
        from zipvoice.utils.infer import SamplingOptions, generate

        opts = SamplingOptions(num_step=self.args.num_step, guidance_scale=1.0, feat_scale=FEAT_SCALE)
        out_dir.mkdir(parents=True, exist_ok=True)
        es, wavs, mcds = self.evalset, [], []
        for i, utt in enumerate(es.ids):
            torch.manual_seed(self.args.seed)
            result = generate(model, self.vocoder, self.tokenizer, self.fbank, es.prompt_wavs[i], es.prompt_texts[i],
                              es.texts[i], opts, device=self.device)
            wav = np.asarray(result.wav, dtype=np.float32)
            sf.write(out_dir / f"{utt}.wav", wav, SAMPLE_RATE)
            wavs.append((wav, SAMPLE_RATE))
            ref, sr = load_audio(es.gt_wavs[i])
            mcds.append(mcd_dtw(ref, wav, sr, hyp_sr=SAMPLE_RATE))
        row = {"mcd": float(np.mean(mcds))}
        if self.recognizer is not None:
            from shirabe.asr import score

            row["per"] = 100.0 * score(self.recognizer, wavs, es.texts).per
        return row


def read_points(path: Path) -> dict[int, dict]:
    if not path.is_file():
        return {}
    points = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not JSON ({e.msg})") from None
            points[int(row["batch"])] = row
    return points


def append_point(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def load_weights(args, batch: int) -> dict | None:
    if batch == 0:
        return None
    return torch.load(args.exp_dir / f"checkpoint-{batch}.pt", map_location="cpu", weights_only=True)["model"]


def backfill_text_gain(meter: Meter, args, points: dict[int, dict], points_file: Path) -> None:
    """Points measured before the text gain was a column get it (dev losses only, no synthesis)."""
    missing = [b for b, r in points.items() if "text_gain" not in r
               and (b == 0 or (args.exp_dir / f"checkpoint-{b}.pt").is_file())]
    if not missing:
        return
    for b in missing:
        model = meter.model(load_weights(args, b))
        points[b]["text_gain"] = 100.0 * (meter.dev_loss(model, mismatched_text=True) / points[b]["dev_loss"] - 1.0)
    tmp = points_file.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(points[b], ensure_ascii=False) + "\n" for b in sorted(points)), encoding="utf-8")
    os.replace(tmp, points_file)
    logger.info("text gain added to %d earlier point(s)", len(missing))


def measure(meter: Meter, args, batch: int, seconds: float | None) -> dict:
    model = meter.model(load_weights(args, batch))
    t0 = time.perf_counter()
    row = {"batch": batch, "dev_loss": meter.dev_loss(model)}
    row["text_gain"] = 100.0 * (meter.dev_loss(model, mismatched_text=True) / row["dev_loss"] - 1.0)
    if meter.evalset is not None:
        with torch.inference_mode():
            row.update(meter.synthesis(model, args.exp_dir / "convergence" / f"batch-{batch}"))
    row["measure_seconds"] = round(time.perf_counter() - t0, 1)
    if seconds is not None:
        row["train_seconds"] = round(seconds, 1)
    return row


# -- check and report ----------------------------------------------------------------------------

def check(points: list[dict], per: float | None, dev_loss_ratio: float | None) -> list[str]:
    """What the last point fails of the convergence criteria (empty: it passes)."""
    if not points:
        return ["no measured point"]
    first, last = points[0], points[-1]
    failures = []
    if per is not None and not (last.get("per") is not None and last["per"] <= per):
        failures.append(f"PER {last.get('per')} % at batch {last['batch']} is not <= {per} %")
    if dev_loss_ratio is not None:
        if first["batch"] != 0:
            failures.append("no untrained point (batch 0) to compare the dev loss with")
        elif not last["dev_loss"] <= dev_loss_ratio * first["dev_loss"]:
            failures.append(f"dev loss {last['dev_loss']:.4f} at batch {last['batch']} is not <= {dev_loss_ratio} x "
                            f"{first['dev_loss']:.4f} (untrained)")
    return failures


def heading(args) -> str:
    return f"{SECTION}: {args.label}" if args.label else SECTION


def shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def markdown(points: list[dict], per_gt: float | None, args, note: str) -> str:
    lines = [
        heading(args), "",
        f"`python bench/zipvoice_convergence.py` — `{args.model_config.name}`, data `{shown(args.data_dir)}` "
        f"({args.dataset}), batches of ≤ {args.max_duration:g} s, ScaledAdam lr {args.base_lr:g} with Eden over "
        f"{args.lr_hours:g} h of audio, seed {args.seed}, {args.device} with {args.num_threads} thread(s), "
        f"{datetime.date.today()}, {cpu_name()}. Each point measures the raw weights of `checkpoint-B.pt`: dev "
        f"flow-matching loss, and {args.num_eval} zero-shot syntheses of held-out "
        f"sentences by unseen speakers ({args.num_step} Euler steps, guidance 1.0, "
        f"{'Vocos' if args.vocoder_path else 'Griffin-Lim'}) scored by MCD-DTW against their recordings and by "
        "the phone recognizer (PER)."
        + (f" The recognizer's PER on the recordings themselves: **{per_gt:.1f} %**." if per_gt is not None else ""),
        "",
    ]
    if note:
        lines += [note, ""]
    lines += ["| batch | hours of audio seen (at most) | dev loss | text gain (%) | MCD-DTW (dB) | PER (%) | training time (s) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in points:
        hours = r["batch"] * args.max_duration / 3600
        per = f"{r['per']:.1f}" if r.get("per") is not None else "-"
        t = f"{r['train_seconds']:.0f}" if r.get("train_seconds") is not None else "-"
        mcd = f"{r['mcd']:.2f}" if r.get("mcd") is not None else "-"
        gain = f"{r['text_gain']:.1f}" if r.get("text_gain") is not None else "-"
        lines.append(f"| {r['batch']} | {hours:.1f} | {r['dev_loss']:.4f} | {gain} | {mcd} | {per} | {t} |")
    if args.plot is not None:
        rel = args.plot
        if args.update is not None:
            try:
                rel = rel.relative_to(args.update.parent)
            except ValueError:
                pass
        lines += ["", f"![ZipVoice convergence{': ' + args.label if args.label else ''}]({rel})"]
    return "\n".join(lines) + "\n"


def plot(points: list[dict], per_gt: float | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["batch"] for r in points]
    panels = [("dev_loss", "dev flow-matching loss"), ("text_gain", "text gain (%)"), ("mcd", "MCD-DTW (dB)"),
              ("per", "PER (%)")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (key, label) in zip(axes, panels, strict=True):
        y = [r.get(key) if r.get(key) is not None else math.nan for r in points]
        ax.plot(x, y, marker="o")
        if key == "dev_loss":
            ax.set_yscale("log")
        if key == "per":
            if per_gt is not None:
                ax.axhline(per_gt, color="green", linestyle="--", label=f"recordings {per_gt:.1f} %")
            ax.axhline(50, color="grey", linestyle=":", label="50 %")
            ax.set_ylim(0, 105)
            ax.legend(loc="upper right")
        ax.set_xlabel("updates")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(False)
    if args.eval_every < 1 or args.num_iters < args.eval_every:
        raise InputError("--eval-every must be >= 1 and --num-iters >= --eval-every")
    torch.set_num_threads(args.num_threads)
    for name in ("data_dir", "exp_dir", "model_config", "test_list", "ground_truth", "train_manifest",
                 "dev_manifest", "token_file", "phone_model_dir", "plot", "update"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).absolute())
    recipe_dir = (args.recipe_dir or args.data_dir.parent).absolute()
    if not recipe_dir.is_dir():
        raise InputError(f"--recipe-dir {recipe_dir}: no such directory")
    cwd = os.getcwd()
    os.chdir(recipe_dir)  # lhotse resolves the features' relative storage paths from here
    try:
        return run(args)
    finally:
        os.chdir(cwd)


def run(args) -> int:
    fbank = args.data_dir / "fbank"
    args.train_manifest = args.train_manifest or fbank / f"{args.dataset}_cuts_train_tokens.jsonl.gz"
    args.dev_manifest = args.dev_manifest or fbank / f"{args.dataset}_cuts_dev_tokens.jsonl.gz"
    args.token_file = args.token_file or args.data_dir / "tokens.txt"
    for f in (args.token_file, args.model_config, args.train_manifest, args.dev_manifest):
        if not f.is_file():
            raise InputError(f"{f}: no such file")
    points_file = args.exp_dir / "convergence.jsonl"
    points = read_points(points_file)
    meter = Meter(args)
    per_gt = meter.ground_truth_per()
    backfill_text_gain(meter, args, points, points_file)
    targets = [0] + list(range(args.eval_every, args.num_iters + 1, args.eval_every))
    for target in targets:
        if target in points:
            continue
        seconds = None
        if target > 0 and not (args.exp_dir / f"checkpoint-{target}.pt").is_file():
            if not args.train:
                logger.info("no %s/checkpoint-%d.pt and --train false: stopping", args.exp_dir, target)
                break
            seconds = train_to(args, target)
        row = measure(meter, args, target, seconds)
        append_point(points_file, row)
        points[target] = row
        logger.info("batch %d: dev loss %.4f, MCD %s dB, PER %s (recordings: %s)", target, row["dev_loss"],
                    f"{row['mcd']:.2f}" if "mcd" in row else "-", f"{row['per']:.1f} %" if "per" in row else "-",
                    f"{per_gt:.1f} %" if per_gt is not None else "-")
    ordered = [points[b] for b in sorted(points)]
    title = f"{args.model_config.name} on {args.dataset}" + (f": {args.label}" if args.label else "")
    if args.plot is not None and ordered:
        plot(ordered, per_gt, args.plot, title)
        logger.info("plot: %s", args.plot)
    text = markdown(ordered, per_gt, args, args.note)
    if args.update is not None:
        update_doc(args.update, heading(args), text)
        logger.info("updated %s", args.update)
    else:
        print(text)
    failures = check(ordered, args.check_per, args.check_dev_loss_ratio)
    for f in failures:
        logger.error("convergence check failed: %s", f)
    return 1 if failures else 0


if __name__ == "__main__":
    run_main(main)
