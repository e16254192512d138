"""Export a ZipVoice / ZipVoiceDistill checkpoint (and a Vocos vocoder) to ONNX.

    python -m zipvoice.bin.onnx_export --model-name zipvoice --model-dir download/zipvoice \\
        --checkpoint-name model.pt --onnx-model-dir exp/onnx --int8 1 \\
        --vocoder-path download/vocos-mel-24khz

writes ``text_encoder.onnx`` and ``fm_decoder.onnx`` with upstream's input/output
names, metadata and opset 13 (sherpa-onnx and upstream's ONNX runner load them),
``*_int8.onnx`` with ``--int8 1`` (dynamic int8 MatMul weights), ``vocoder.onnx``
(``mel`` (N, 100, T) → ``audio`` (N, T·256), ISTFT as a transposed convolution) with
``--vocoder-path``, and copies ``tokens.txt`` and ``model.json`` beside them.

``--unity-sentis 1 --fm-seq-len N`` writes fixed-length graphs for Unity Sentis
instead (static shapes, sequence padded to N frames with a mask input, no
If/Loop/Scan or sequence ops, opset 15); each is audited and the export fails
naming any op outside the allow-list. See docs/zipvoice_onnx.md.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shirabe.cli import (
    ArgumentParser,
    InputError,
    add_bool_argument,
    add_device_argument,
    add_trust_checkpoint_argument,
    add_verbose_argument,
    get_logger,
    resolve_device,
    run_main,
    setup_logging,
)

logger = get_logger(__name__)


def get_parser() -> ArgumentParser:
    p = ArgumentParser(prog="onnx_export", description=__doc__)
    p.add_argument("--model-name", choices=("zipvoice", "zipvoice_distill"), default="zipvoice",
                   help="model type of the checkpoint")
    p.add_argument("--model-dir", required=True, help="directory with model.json, tokens.txt and the checkpoint")
    p.add_argument("--checkpoint-name", default="model.pt",
                   help="checkpoint file in --model-dir (.pt with {'model': state_dict}, or .safetensors)")
    p.add_argument("--config-name", default="model.json", help="model config file in --model-dir")
    p.add_argument("--token-file", default=None, help="token table (default: MODEL_DIR/tokens.txt)")
    add_trust_checkpoint_argument(p)
    p.add_argument("--onnx-model-dir", required=True, help="output directory (required)")
    add_bool_argument(p, "--int8", False, "also write text_encoder_int8.onnx and fm_decoder_int8.onnx")
    p.add_argument("--vocoder-path", default=None,
                   help="Vocos directory (config.yaml + pytorch_model.bin) to export as vocoder.onnx "
                        "(default: no vocoder graph)")
    add_bool_argument(p, "--unity-sentis", False, "write fixed-length graphs for Unity Sentis instead")
    p.add_argument("--fm-seq-len", type=int, default=0,
                   help="frames (prompt + generated) of the fixed-length graphs; needed with --unity-sentis")
    p.add_argument("--token-seq-len", type=int, default=256,
                   help="tokens (prompt + text + 1 pad) of the fixed-length text encoder")
    p.add_argument("--speed-rule", choices=("torch", "upstream"), default="torch",
                   help="frame count in the text encoder: 'torch' = P + ceil(P/N_prompt*N_text/speed) as the "
                        "PyTorch model; 'upstream' = ceil(P/N_prompt*(N_prompt+N_text)/speed) as upstream's "
                        "exported graph (they differ only at speed != 1)")
    device = add_device_argument(p)
    device.help = ("accepted as in every binary (auto, cpu, cuda, cuda:N, mps); the graphs are always "
                   "traced on the CPU, so an export is the same on every machine")
    add_verbose_argument(p)
    return p


def check_args(args) -> None:
    if not Path(args.model_dir).is_dir():
        raise InputError(f"{args.model_dir}: no such model directory")
    if args.unity_sentis:
        if args.fm_seq_len < 16:
            raise InputError(f"--unity-sentis needs --fm-seq-len >= 16 frames, got {args.fm_seq_len}")
        if args.token_seq_len < 2:
            raise InputError(f"--token-seq-len must be >= 2, got {args.token_seq_len}")
        if args.int8:
            raise InputError("--int8 makes onnxruntime-only quantised ops that Unity Sentis cannot import; "
                             "export the Sentis graphs in float32 (Sentis quantises weights itself)")
    elif args.fm_seq_len:
        raise InputError("--fm-seq-len only applies with --unity-sentis 1")
    if args.vocoder_path is not None and not Path(args.vocoder_path).is_dir():
        raise InputError(f"{args.vocoder_path}: no such vocoder directory (expected config.yaml + pytorch_model.bin)")


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(args.verbose)
    check_args(args)
    if args.device != "auto" and resolve_device(args.device).type != "cpu":
        logger.info("--device %s: the graphs are traced on the CPU all the same", args.device)

    from shirabe.vocoder import load_vocos_dir
    from zipvoice.export.exporter import export_zipvoice
    from zipvoice.models import load_model

    model_dir = Path(args.model_dir)
    token_file = Path(args.token_file) if args.token_file else model_dir / "tokens.txt"
    model = load_model(model_dir, args.checkpoint_name, args.model_name, trust=args.trust_checkpoint,
                       config_name=args.config_name, token_file=token_file)
    vocos = load_vocos_dir(args.vocoder_path, trust=args.trust_checkpoint) if args.vocoder_path else None
    out_dir = Path(args.onnx_model_dir)
    written = export_zipvoice(
        model, args.model_name, out_dir, int8=args.int8, vocos=vocos, unity_sentis=args.unity_sentis,
        fm_seq_len=args.fm_seq_len, token_seq_len=args.token_seq_len, speed_rule=args.speed_rule,
    )
    shutil.copyfile(token_file, out_dir / "tokens.txt")
    shutil.copyfile(model_dir / args.config_name, out_dir / "model.json")
    logger.info("exported %s to %s: %s (+ tokens.txt, model.json)", args.model_name, out_dir,
                ", ".join(p.name for p in written))
    return 0


if __name__ == "__main__":
    run_main(main)
