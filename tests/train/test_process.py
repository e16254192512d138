"""shirabe.train.process: one process's device and logging, and the record of how an experiment was made."""

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from shirabe.cli import InputError
from shirabe.train import process

REPO = Path(__file__).resolve().parents[2]


def test_describe_experiment_records_command_revision_versions_and_files(tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("a\t0\n")
    exp = tmp_path / "exp"
    process.describe_experiment(exp, "pkg.bin.train", ["--exp-dir", "exp dir", "--seed", "3"],
                                files={"model.json": '{"dim": 4}\n', "tokens.txt": tokens})
    process.describe_experiment(exp, "pkg.bin.train", ["--resume"], files={"tokens.txt": exp / "tokens.txt"})
    assert (exp / "model.json").read_text() == '{"dim": 4}\n'
    assert (exp / "tokens.txt").read_text() == "a\t0\n"
    lines = (exp / "train-commands.txt").read_text().splitlines()
    assert len(lines) == 4  # two starts, each a facts line and a command line
    assert lines[1] == f"{sys.executable} -m pkg.bin.train --exp-dir 'exp dir' --seed 3"
    assert lines[3] == f"{sys.executable} -m pkg.bin.train --resume"
    facts = lines[0].split()
    assert facts[0] == "#"
    assert facts[facts.index("torch") + 1] == importlib.metadata.version("torch")
    assert facts[facts.index("lhotse") + 1] == importlib.metadata.version("lhotse")
    assert facts[facts.index("python") + 1] == ".".join(map(str, sys.version_info[:3]))
    if shutil.which("git") and (REPO / ".git").exists():
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert facts[facts.index("git") + 1].startswith(head)


def test_git_revision_outside_a_checkout_is_none(tmp_path):
    assert process.git_revision(tmp_path) is None


def test_package_versions_leave_out_what_is_not_installed():
    versions = process.package_versions(("torch", "no-such-package-here"))
    assert versions == {"python": ".".join(map(str, sys.version_info[:3])),
                        "torch": importlib.metadata.version("torch")}


def args_for(tmp_path, device):
    return argparse.Namespace(device=device, num_threads=1, exp_dir=tmp_path / "exp", master_port=12399,
                              verbose=False)


def test_setup_rank_resolves_the_device_and_logs_to_a_file(tmp_path):
    import logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    threads = torch.get_num_threads()
    try:
        device, local_rank = process.setup_rank(0, 1, args_for(tmp_path, "cpu"), log_file=tmp_path / "exp" / "t.txt")
        assert device == torch.device("cpu") and local_rank == 0 and torch.get_num_threads() == 1
        logging.getLogger("some.module").info("hello from the test")
        for h in root.handlers:
            h.flush()
        assert "hello from the test" in (tmp_path / "exp" / "t.txt").read_text()
        if not torch.cuda.is_available():
            assert process.setup_rank(0, 1, args_for(tmp_path, "auto"))[0] == torch.device("cpu")
            with pytest.raises(InputError, match="--device cuda:0: CUDA is not available"):
                process.setup_rank(0, 1, args_for(tmp_path, "cuda"))
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        torch.set_num_threads(threads)
