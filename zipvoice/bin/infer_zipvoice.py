"""Zero-shot speech synthesis with a ZipVoice / ZipVoiceDistill model.

One sentence::

    python -m zipvoice.bin.infer_zipvoice --model-name zipvoice --model-dir download/zipvoice \\
        --vocoder-path download/vocos-mel-24khz --tokenizer japanese \\
        --prompt-wav prompt.wav --prompt-text "プロンプトの書き起こし。" \\
        --text "合成したい文章。" --res-wav-path result.wav

A list (TSV, one ``{id}\\t{prompt_text}\\t{prompt_wav}\\t{text}`` per line; results go to
``--res-dir/{id}.{format}``)::

    python -m zipvoice.bin.infer_zipvoice --model-dir download/zipvoice \\
        --tokenizer japanese --test-list test.tsv --res-dir results

Reproduce a run exactly from saved noise (``(T_total, 100)``: prompt + generated frames of
every chunk, in text order) and keep the generated log-mel::

    python -m zipvoice.bin.infer_zipvoice ... --noise-file noise.npy --save-features feats.npy

The model directory holds ``model.json``, ``tokens.txt`` and the checkpoint; the vocoder
directory ``config.yaml`` + ``pytorch_model.bin`` (vocos-mel-24khz). Without
``--vocoder-path`` Griffin-Lim is used (much lower quality; a warning is logged).
"""

from __future__ import annotations

from pathlib import Path

import torch

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_device_argument,
    add_num_threads_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)
from zipvoice.utils.cli_args import (
    add_synthesis_arguments,
    check_sentence_args,
    load_noise,
    read_test_list,
    synthesize_items,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="infer_zipvoice", description=__doc__)
    p.add_argument("--model-name", choices=("zipvoice", "zipvoice_distill"), default="zipvoice",
                   help="model type; sets the defaults of --num-step and --guidance-scale")
    p.add_argument("--model-dir", required=True,
                   help="directory with model.json, tokens.txt and the checkpoint")
    p.add_argument("--checkpoint-name", default="model.pt",
                   help="checkpoint file in --model-dir (.pt with {'model': state_dict}, or .safetensors)")
    p.add_argument("--token-file", default=None,
                   help="token table (default: MODEL_DIR/tokens.txt)")
    add_trust_checkpoint_argument(p)
    p.add_argument("--vocoder-path", default=None,
                   help="Vocos directory (config.yaml + pytorch_model.bin); default: Griffin-Lim, with a warning")
    add_synthesis_arguments(p)
    p.add_argument("--seed", type=int, default=666, help="random seed")
    add_num_threads_argument(p)
    p.add_argument("--max-duration", type=float, default=100.0,
                   help="seconds of prompt + generated audio per batch of chunks")
    add_device_argument(p, "the model and the vocoder")
    add_verbose_argument(p)
    return p


def check_args(args) -> None:
    if not Path(args.model_dir).is_dir():
        raise InputError(f"{args.model_dir}: no such model directory")
    check_sentence_args(args)
    if not args.max_duration > 0:
        raise InputError(f"--max-duration must be > 0, got {args.max_duration}")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    check_args(args)

    from shirabe.audio.fbank import VocosFbank
    from shirabe.vocoder import load_vocoder
    from zipvoice.models import SAMPLING_DEFAULTS, load_model
    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.infer import SamplingOptions, generate

    torch.set_num_threads(args.num_threads)
    try:
        torch.set_num_interop_threads(args.num_threads)
    except RuntimeError:  # already set in this process
        pass
    device = resolve_device(args.device)
    defaults = SAMPLING_DEFAULTS[args.model_name]
    opts = SamplingOptions(
        num_step=args.num_step or defaults["num_step"],
        guidance_scale=defaults["guidance_scale"] if args.guidance_scale is None else args.guidance_scale,
        t_shift=args.t_shift, speed=args.speed, feat_scale=args.feat_scale, target_rms=args.target_rms,
        max_duration=args.max_duration, remove_long_sil=args.remove_long_sil, raw_evaluation=args.raw_evaluation,
    )
    noise = load_noise(args.noise_file) if args.noise_file else None
    items = read_test_list(args.test_list) if args.test_list else None

    token_file = Path(args.token_file) if args.token_file else Path(args.model_dir) / "tokens.txt"
    extra = {"scheme": args.scheme} if args.tokenizer == "japanese" else {}
    tokenizer = get_tokenizer(args.tokenizer, token_file, lang=args.lang, **extra)
    model = load_model(args.model_dir, args.checkpoint_name, args.model_name, trust=args.trust_checkpoint,
                       device=device, token_file=token_file)
    vocoder = load_vocoder(args.vocoder_path, trust=args.trust_checkpoint).to(device)
    fbank = VocosFbank()
    logger.info("device %s, %s, %d steps, guidance %.2f", device, args.model_name, opts.num_step, opts.guidance_scale)

    if items is None:
        items = [(None, args.prompt_text, args.prompt_wav, args.text)]

    def synthesize(prompt_wav, prompt_text, text):
        torch.manual_seed(args.seed)
        return generate(model, vocoder, tokenizer, fbank, prompt_wav, prompt_text, text, opts,
                        device=device, noise=noise)

    synthesize_items(items, args, synthesize, logger)
    return 0


if __name__ == "__main__":
    run_main(main)
