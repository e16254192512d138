"""Every binary speaks one option vocabulary (shirabe.cli).

The binaries are found, not listed: every module of a ``bin`` sub-package of a
top-level package of the repository (shirabe, zipvoice, seedsvc and any package
added later). For each one:

* ``python -m <module> --help`` exits 0 (run as users run it, in a subprocess);
* ``get_parser()`` exists and every option's help shows its default, or the
  option is required;
* booleans take a value (``--flag true|false|1|0`` with ``shirabe.cli.str2bool``):
  no bare switches except ``--help``, and an option is a boolean in every binary
  or in none;
* ``--device`` has the shared type and default ``auto`` wherever it appears, and
  every binary takes it unless it is listed in :data:`NO_MODEL` (binaries that run
  no PyTorch model);
* every binary takes ``--verbose``; it and ``--trust-checkpoint`` are booleans
  defaulting to false, ``--num-threads`` is an integer;
* no binary spells a concept of :data:`CONCEPTS` another way.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shirabe.cli import device_spec, str2bool

ROOT = Path(__file__).resolve().parents[1]

# Binaries that run no PyTorch model, so they take no --device, and why.
NO_MODEL = {
    "songgeneration.bin.make_text_tokenizer": "writes tokenizer files",
    "acestep.bin.evaluate_accompaniment": "signal metrics with librosa",
    "acestep.bin.prepare_accompaniment": "reads, normalises and writes audio files",
    "acestep.bin.make_standins": "writes random weights",
    "acestep.bin.compare": "copies audio and writes a listening page",
    "acestep.bin.rating_stats": "statistics of rating sheets (scipy)",
    "acestep.bin.validate_config": "checks a config file (the model's module names come from a meta-device build)",
    "shirabe.bin.g2p": "text frontend (pyopenjtalk)",
    "shirabe.bin.manifests": "splits and joins manifests",
    "shirabe.bin.plot_spectrograms": "draws log-mel spectrograms",
    "acestep.bin.merge_lora": "adds adapter weights to the base weights",
    "songbloom.bin.average": "averages stored weights",
    "songbloom.bin.g2p": "text frontend (pyopenjtalk)",
    "songbloom.bin.make_standins": "writes random weights",
    "songbloom.bin.merge_lora": "adds adapter weights to the base weights",
    "songbloom.bin.prepare_sung_phone_corpus": "cuts sung phrases at the score's rests",
    "songgeneration.bin.merge_lora": "adds adapter weights to the base weights",
    "zipvoice.bin.compute_fbank": "log-mel features in lhotse worker processes",
    "zipvoice.bin.generate_averaged_model": "averages stored weights",
    "zipvoice.bin.infer_zipvoice_onnx": "onnxruntime on the CPU",
    "zipvoice.bin.merge_lora": "adds adapter weights to the base weights",
    "zipvoice.bin.prepare_dataset": "reads audio headers and writes manifests",
    "zipvoice.bin.prepare_token_file": "writes a token table",
    "zipvoice.bin.prepare_tokens": "text frontend (pyopenjtalk, espeak)",
}

# One spelling per concept: {canonical: other spellings no binary may use}.
CONCEPTS = {
    "--num-threads": {"--num-thread", "--threads", "--nthreads", "--num-cpu-threads", "--n-threads"},
    "--num-jobs": {"--nj", "--num-job", "--n-jobs", "--num-procs", "--processes"},
    "--trust-checkpoint": {"--trust", "--trust-checkpoints", "--allow-pickle", "--unsafe-load"},
    "--device": {"--gpu", "--use-gpu", "--cuda", "--devices"},
    "--verbose": {"--debug", "--quiet", "-v"},
    "--seed": {"--random-seed", "--rng-seed", "--seeds"},
    "--exp-dir": {"--exp", "--expdir", "--experiment-dir"},
    "--output": {"--out", "--output-file", "--out-file", "--outfile", "--output-path"},
    "--input": {"--in", "--input-file", "--in-file", "--infile", "--input-path", "--tsv-path"},
    "--output-dir": {"--out-dir", "--outdir", "--dest-dir", "--output-directory", "--target-dir"},
    "--manifest-dir": {"--source-dir", "--manifests-dir", "--src-dir"},
    "--dataset": {"--prefix", "--dataset-name", "--corpus-name"},
    "--subset": {"--name", "--subset-name", "--split-name"},
    "--model-dir": {"--model-path", "--model-directory", "--model-folder"},
    "--token-file": {"--tokens", "--tokens-file", "--token-table"},
    "--vocoder-path": {"--vocoder", "--vocoder-dir", "--vocoder-model"},
    "--f0-method": {"--f0-extractor", "--pitch-method", "--f0-algorithm"},
    "--sampling-rate": {"--sample-rate", "--sr", "--sampling-frequency"},
    "--overwrite": {"--force", "--redo"},
    "--num-iters": {"--num-steps", "--max-steps", "--total-steps", "--num-updates"},
    "--checkpoint": {"--init-checkpoint", "--init-from", "--pretrained", "--init-model"},
    "--dev-manifest": {"--valid-cuts", "--dev-cuts", "--valid-manifest", "--valid-manifests"},
}


def bin_modules() -> list[str]:
    names = []
    for pkg in pkgutil.iter_modules([str(ROOT)]):
        if pkg.ispkg and (ROOT / pkg.name / "bin" / "__init__.py").is_file():
            names += [f"{pkg.name}.bin.{m.name}" for m in pkgutil.iter_modules([str(ROOT / pkg.name / "bin")])
                      if not m.name.startswith("_")]
    return sorted(names)


MODULES = bin_modules()


def parsers_of(parser: argparse.ArgumentParser):
    """The parser and its sub-command parsers."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from parsers_of(sub)


def options(module: str) -> list[tuple[argparse.ArgumentParser, argparse.Action]]:
    parser = importlib.import_module(module).get_parser()
    return [(p, a) for p in parsers_of(parser) for a in p._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


@pytest.fixture(scope="module")
def all_options() -> dict[str, list[tuple[argparse.ArgumentParser, argparse.Action]]]:
    return {m: options(m) for m in MODULES}


def test_discovers_every_package_with_binaries():
    packages = {m.split(".")[0] for m in MODULES}
    assert {"shirabe", "zipvoice", "seedsvc"} <= packages
    assert "zipvoice.bin.infer_zipvoice" in MODULES and "shirabe.bin.g2p" in MODULES
    assert set(NO_MODEL) <= set(MODULES), set(NO_MODEL) - set(MODULES)


def test_help_runs_as_a_command():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(module):
        r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
        return module, r

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, MODULES))
    failed = {m: r.stderr.strip().splitlines()[-1:] for m, r in results if r.returncode != 0}
    assert not failed
    for module, r in results:
        assert "usage:" in r.stdout and "--help" in r.stdout, module


def test_every_option_shows_its_default(all_options):
    missing = []
    for module, opts in all_options.items():
        for parser, action in opts:
            if action.help == argparse.SUPPRESS or action.required:
                continue
            formatter = parser._get_formatter()
            text = " ".join(formatter._format_action(action).split())
            if "default" not in text.lower():
                missing.append(f"{module}: {action.option_strings or action.dest}")
    assert not missing, "options whose help does not show the default:\n" + "\n".join(missing)


def is_bool(action: argparse.Action) -> bool:
    return action.type is str2bool or isinstance(action.default, bool)


def test_no_bare_boolean_switches(all_options):
    bad = []
    for module, opts in all_options.items():
        for _, action in opts:
            if action.nargs == 0 and not isinstance(action, argparse._VersionAction):
                bad.append(f"{module}: {action.option_strings} is a bare switch")
            elif is_bool(action) and (action.type is not str2bool or action.nargs is not None):
                bad.append(f"{module}: {action.option_strings} must take one value parsed by shirabe.cli.str2bool")
    assert not bad, "\n".join(bad)


def test_an_option_is_a_boolean_everywhere_or_nowhere(all_options):
    kinds: dict[str, dict[bool, list[str]]] = {}
    for module, opts in all_options.items():
        for _, action in opts:
            for flag in action.option_strings:
                kinds.setdefault(flag, {}).setdefault(is_bool(action), []).append(module)
    mixed = {flag: k for flag, k in kinds.items() if len(k) > 1}
    assert not mixed


def device_actions(opts):
    return [a for _, a in opts if "--device" in a.option_strings]


def test_device_is_shared_and_defaults_to_auto(all_options):
    for module, opts in all_options.items():
        actions = device_actions(opts)
        if module in NO_MODEL:
            assert not actions, f"{module} is listed as running no model but takes --device"
            continue
        assert actions, f"{module} takes no --device (add shirabe.cli.add_device_argument, or list it in NO_MODEL)"
        for action in actions:
            assert action.type is device_spec and action.default == "auto", module


def test_shared_options_have_one_meaning(all_options):
    seen = {"--trust-checkpoint": set(), "--verbose": set(), "--num-threads": set()}
    for module, opts in all_options.items():
        for _, action in opts:
            for flag in set(action.option_strings) & set(seen):
                seen[flag].add(module)
                if flag == "--num-threads":
                    assert action.type is int and action.default >= 1, module
                else:
                    assert action.type is str2bool and action.default is False, (module, flag)
    assert seen["--trust-checkpoint"] and seen["--num-threads"]
    assert seen["--verbose"] == set(MODULES), f"no --verbose in {sorted(set(MODULES) - seen['--verbose'])}"


def test_one_spelling_per_concept(all_options):
    for canonical, others in CONCEPTS.items():
        assert canonical not in others
    used = {}
    for module, opts in all_options.items():
        for _, action in opts:
            for flag in action.option_strings:
                used.setdefault(flag, []).append(module)
    wrong = [f"{flag} in {', '.join(used[flag])} (use {canonical})"
             for canonical, others in CONCEPTS.items() for flag in sorted(others & set(used))]
    assert not wrong, "\n".join(wrong)
