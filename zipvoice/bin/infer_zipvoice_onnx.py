"""Zero-shot speech synthesis with exported ZipVoice graphs in onnxruntime (CPU, no torch).

    python -m zipvoice.bin.infer_zipvoice_onnx --model-name zipvoice_distill \\
        --onnx-model-dir exp/onnx_distill --onnx-int8 1 --num-threads 2 --tokenizer japanese \\
        --prompt-wav prompt.wav --prompt-text "プロンプトの書き起こし。" \\
        --text "合成したい文章。" --res-wav-path result.wav

The directory holds what ``python -m zipvoice.bin.onnx_export`` writes:
``text_encoder.onnx``, ``fm_decoder.onnx`` (``*_int8.onnx`` with ``--onnx-int8 1``),
``tokens.txt`` and, when exported with ``--vocoder-path``, ``vocoder.onnx``. Text
encoder, Euler loop, decoder and vocoder run in onnxruntime and numpy; torch is only
imported when the vocoder is not an ONNX graph (a Vocos directory given as
``--vocoder-path``, or the Griffin-Lim fallback when there is no vocoder at all).
Chunks are generated one at a time. Other flags are those of ``infer_zipvoice``.
"""

from __future__ import annotations

from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_num_threads_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
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

SAMPLING_DEFAULTS = {
    "zipvoice": {"num_step": 16, "guidance_scale": 1.0},
    "zipvoice_distill": {"num_step": 8, "guidance_scale": 3.0},
}


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="infer_zipvoice_onnx", description=__doc__)
    p.add_argument("--model-name", choices=tuple(SAMPLING_DEFAULTS), default=None,
                   help="model type; sets the defaults of --num-step and --guidance-scale "
                        "(default: the model_name stored in fm_decoder.onnx, else zipvoice)")
    p.add_argument("--onnx-model-dir", required=True,
                   help="directory with text_encoder.onnx, fm_decoder.onnx (and *_int8.onnx, vocoder.onnx)")
    add_bool_argument(p, "--onnx-int8", False, "use text_encoder_int8.onnx and fm_decoder_int8.onnx")
    p.add_argument("--model-dir", default=None,
                   help="directory with tokens.txt (default: --onnx-model-dir)")
    p.add_argument("--token-file", default=None, help="token table (default: MODEL_DIR/tokens.txt)")
    p.add_argument("--vocoder-path", default=None,
                   help="vocoder: an .onnx file, or a Vocos directory (runs in PyTorch); default: "
                        "ONNX_MODEL_DIR/vocoder.onnx, else Griffin-Lim in PyTorch with a warning")
    add_trust_checkpoint_argument(p)
    add_synthesis_arguments(p)
    p.add_argument("--seed", type=int, default=666, help="seed of numpy's generator for the initial noise")
    add_num_threads_argument(p, what="onnxruntime (and a PyTorch vocoder)")
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    check_sentence_args(args)

    from zipvoice.tokenizer import get_tokenizer
    from zipvoice.utils.onnx_infer import OnnxZipVoice, generate, load_vocoder_np
    from zipvoice.utils.pipeline import SamplingOptions

    runner = OnnxZipVoice(args.onnx_model_dir, int8=args.onnx_int8, num_thread=args.num_threads)
    model_name = args.model_name or runner.model_name or "zipvoice"
    if runner.model_name and args.model_name and runner.model_name != args.model_name:
        logger.warning("--model-name %s, but %s was exported from %s", args.model_name,
                       runner.fm_decoder_path, runner.model_name)
    defaults = SAMPLING_DEFAULTS[model_name]
    opts = SamplingOptions(
        num_step=args.num_step or defaults["num_step"],
        guidance_scale=defaults["guidance_scale"] if args.guidance_scale is None else args.guidance_scale,
        t_shift=args.t_shift, speed=args.speed, feat_scale=args.feat_scale, target_rms=args.target_rms,
        remove_long_sil=args.remove_long_sil, raw_evaluation=args.raw_evaluation,
    )
    noise = load_noise(args.noise_file) if args.noise_file else None
    items = read_test_list(args.test_list) if args.test_list else None
    if args.token_file:
        token_file = Path(args.token_file)
    else:
        token_file = Path(args.model_dir or args.onnx_model_dir) / "tokens.txt"
    if not token_file.is_file():
        raise InputError(f"{token_file}: no such token file (give --model-dir or --token-file)")
    extra = {"scheme": args.scheme} if args.tokenizer == "japanese" else {}
    tokenizer = get_tokenizer(args.tokenizer, token_file, lang=args.lang, **extra)
    vocoder = load_vocoder_np(args.onnx_model_dir, args.vocoder_path, trust=args.trust_checkpoint,
                              num_thread=args.num_threads)
    logger.info("onnxruntime, %s%s, %d thread(s), %d steps, guidance %.2f", model_name,
                " int8" if args.onnx_int8 else "", args.num_threads, opts.num_step, opts.guidance_scale)

    if items is None:
        items = [(None, args.prompt_text, args.prompt_wav, args.text)]

    def synthesize(prompt_wav, prompt_text, text):
        return generate(runner, vocoder, tokenizer, prompt_wav, prompt_text, text, opts, seed=args.seed, noise=noise)

    synthesize_items(items, args, synthesize, logger)
    return 0


if __name__ == "__main__":
    run_main(main)
