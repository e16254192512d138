"""egs/zipvoice_ja/{cmd.sh,path.sh,utils,conf/*.conf} and the config-file parser behind them."""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "egs" / "zipvoice_ja"


def bash(script: str, cwd: Path = RECIPE, env: dict[str, str] | None = None):
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=10
    )


@pytest.fixture
def config_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "utils"))
    return importlib.import_module("parallel.config")


@pytest.mark.parametrize(
    ("backend", "prog"),
    [("", "run.pl"), ("local", "run.pl"), ("sge", "queue.pl"), ("slurm", "slurm.pl")],
)
def test_cmd_sh_selects_the_backend(backend, prog):
    setting = f"cmd_backend={backend}; " if backend else "unset cmd_backend; "
    result = bash(
        "set -euo pipefail; " + setting + ". ./cmd.sh; "
        'printf "%s\\n" "$train_cmd" "$decode_cmd" "$cuda_cmd"'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"utils/{prog}",
        f"utils/{prog} --mem 4G",
        f"utils/{prog} --gpu 1",
    ]


def test_cmd_sh_rejects_an_unknown_backend():
    result = bash("set -eu; cmd_backend=pbs; . ./cmd.sh; echo still-here")
    assert result.returncode != 0
    assert "unknown cmd_backend 'pbs'" in result.stderr
    assert "still-here" not in result.stdout


def test_cmd_sh_documents_the_shared_options():
    text = (RECIPE / "cmd.sh").read_text()
    for option in ("--mem", "--gpu", "--num-threads", "--max-jobs-run", "--time"):
        assert option in text


def test_path_sh_sets_up_the_environment():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = bash(
        "set -euo pipefail; . ./path.sh; "
        'printf "%s\\n" "$PATH" "$PYTHONPATH" "$PYTHONIOENCODING" "$LC_ALL" "$(command -v run.pl)"',
        env=env,
    )
    assert result.returncode == 0, result.stderr
    path, pythonpath, encoding, lc_all, run_pl = result.stdout.splitlines()
    entries = path.split(":")
    assert entries[0] == str(REPO / "utils")
    if (REPO / ".venv" / "bin" / "python").exists():
        assert str(REPO / ".venv" / "bin") in entries
    assert pythonpath == str(REPO)
    assert (encoding, lc_all) == ("UTF-8", "C.UTF-8")
    assert run_pl == str(REPO / "utils" / "run.pl")


def test_path_sh_keeps_an_existing_pythonpath():
    env = dict(os.environ, PYTHONPATH="/opt/extra")
    result = bash('. ./path.sh; echo "$PYTHONPATH"', env=env)
    assert result.stdout.strip() == f"{REPO}:/opt/extra"


def test_recipe_utils_is_a_relative_symlink():
    link = RECIPE / "utils"
    assert link.is_symlink()
    assert os.readlink(link) == "../../utils"
    result = bash("utils/run.pl --help")
    assert result.returncode == 0 and "Usage: run.pl" in result.stdout


@pytest.mark.parametrize(
    ("conf", "module", "cases"),
    [
        (
            "queue.conf",
            "sge",
            [("mem", "4G"), ("mem", "0"), ("gpu", "0"), ("gpu", "2"), ("num_threads", "8"),
             ("num_threads", "1"), ("max_jobs_run", "10"), ("time", "2:00:00")],
        ),
        (
            "slurm.conf",
            "slurm",
            [("mem", "4G"), ("mem", "0"), ("gpu", "0"), ("gpu", "2"), ("num_threads", "8"),
             ("max_jobs_run", "10"), ("time", "2:00:00")],
        ),
    ],
)  # fmt: skip
def test_recipe_conf_files_match_the_builtin_defaults(config_module, conf, module, cases):
    builtin = importlib.import_module(f"parallel.{module}").BUILTIN_CONFIG
    shipped = config_module.parse_config((RECIPE / "conf" / conf).read_text(), conf)
    default = config_module.parse_config(builtin, "builtin")
    assert shipped.command == default.command
    assert shipped.defaults == default.defaults == {"gpu": "0"}
    for name, value in cases:
        assert shipped.flags_for(name, value) == default.flags_for(name, value)


def test_config_parser_precedence_and_substitution(config_module):
    config = config_module.parse_config(
        "# comment\n"
        "command qsub -v PATH -l arch=*64*   # trailing comment\n"
        "option gpu=* -l gpu=$0 -q g.q\n"
        "option gpu=0 -q all.q\n"
        "option mem=0\n"
        "option mem=* -l mem_free=$0,ram_free=$0\n"
        "default gpu=0\n",
        "test.conf",
    )
    assert config.command == ["qsub", "-v", "PATH", "-l", "arch=*64*"]
    assert config.flags_for("gpu", "0") == ["-q", "all.q"]  # exact value beats =*
    assert config.flags_for("gpu", "3") == ["-l", "gpu=3", "-q", "g.q"]
    assert config.flags_for("mem", "0") == []
    assert config.flags_for("mem", "4G") == ["-l", "mem_free=4G,ram_free=4G"]
    with pytest.raises(config_module.ConfigError, match="--num-threads"):
        config.flags_for("num_threads", "2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("command qsub\nfrobnicate x=1\n", "test.conf:2"),
        ("option mem=* -l mem=$0\n", "no 'command' line"),
        ("command qsub\noption mem -l x\n", "expected name=value"),
        ("command qsub\ndefault gpu=*\n", "test.conf:2"),
    ],
)
def test_config_parser_errors_name_the_line(config_module, text, message):
    with pytest.raises(config_module.ConfigError, match=message):
        config_module.parse_config(text, "test.conf")
