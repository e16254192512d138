"""utils/parse_options.sh, exercised through small bash scripts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PARSE_OPTIONS = Path(__file__).resolve().parents[2] / "utils" / "parse_options.sh"

SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
use_gpu=false
cmd=utils/run.pl
name=default
{help}
. {parse_options} || exit 1
echo "stage=$stage"
echo "stop_stage=$stop_stage"
echo "use_gpu=$use_gpu"
echo "cmd=$cmd"
echo "name=$name"
echo "nargs=$#"
for a in "$@"; do echo "arg=$a"; done
"""


def run_script(tmp_path: Path, *args: str, help_message: str | None = "Usage: demo.sh <dir>"):
    help_line = "" if help_message is None else f"help_message='{help_message}'"
    script = tmp_path / "demo.sh"
    script.write_text(SCRIPT.format(help=help_line, parse_options=PARSE_OPTIONS))
    return subprocess.run(
        ["bash", str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=10
    )


def values(result) -> dict[str, str]:
    out = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if key != "arg":
            out[key] = value
    return out


def positional(result) -> list[str]:
    return [line[4:] for line in result.stdout.splitlines() if line.startswith("arg=")]


@pytest.mark.parametrize("spelling", ["--stop-stage", "--stop_stage"])
def test_dash_and_underscore_set_the_same_variable(tmp_path, spelling):
    result = run_script(tmp_path, "--stage", "2", spelling, "5")
    assert result.returncode == 0, result.stderr
    assert values(result)["stage"] == "2"
    assert values(result)["stop_stage"] == "5"


def test_undefined_variable_is_an_invalid_option(tmp_path):
    result = run_script(tmp_path, "--foo-bar", "1")
    assert result.returncode == 1
    assert "invalid option --foo-bar" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_equals_form_is_rejected(tmp_path):
    result = run_script(tmp_path, "--stage=3")
    assert result.returncode == 1
    assert "must be of the form --name value" in result.stderr
    assert result.stdout == ""


def test_parsing_stops_at_first_positional_argument(tmp_path):
    result = run_script(tmp_path, "--stage", "2", "data/train", "--stop-stage", "3", "x y")
    assert result.returncode == 0, result.stderr
    assert values(result)["stage"] == "2"
    assert values(result)["stop_stage"] == "100"
    assert positional(result) == ["data/train", "--stop-stage", "3", "x y"]


def test_boolean_options_only_accept_true_or_false(tmp_path):
    bad = run_script(tmp_path, "--use-gpu", "yes")
    assert bad.returncode == 1
    assert "expected true or false" in bad.stderr
    good = run_script(tmp_path, "--use-gpu", "true")
    assert good.returncode == 0
    assert values(good)["use_gpu"] == "true"


def test_boolean_options_take_1_and_0_as_true_and_false(tmp_path):
    assert values(run_script(tmp_path, "--use-gpu", "1"))["use_gpu"] == "true"
    assert values(run_script(tmp_path, "--use-gpu", "0"))["use_gpu"] == "false"
    assert run_script(tmp_path, "--use-gpu", "2").returncode == 1


def test_values_with_spaces_and_shell_characters_survive(tmp_path):
    result = run_script(tmp_path, "--cmd", "utils/queue.pl --mem 4G", "--name", "it's $HOME; `x` *")
    assert result.returncode == 0, result.stderr
    assert values(result)["cmd"] == "utils/queue.pl --mem 4G"
    assert values(result)["name"] == "it's $HOME; `x` *"


def test_config_files_are_sourced_before_the_command_line(tmp_path):
    (tmp_path / "a.conf").write_text("stage=7\nname=from_a\nstop_stage=8\n")
    (tmp_path / "b.conf").write_text("name=from_b\n")
    # The command line wins even when it comes before --config; later configs win over earlier.
    result = run_script(
        tmp_path, "--stage", "3", "--config", "a.conf", "--config", "b.conf", "rest"
    )
    assert result.returncode == 0, result.stderr
    got = values(result)
    assert (got["stage"], got["stop_stage"], got["name"]) == ("3", "8", "from_b")
    assert positional(result) == ["rest"]


def test_missing_config_file_is_an_error(tmp_path):
    result = run_script(tmp_path, "--config", "nope.conf")
    assert result.returncode == 1
    assert "nope.conf" in result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_help_message_and_exits_zero(tmp_path, flag):
    result = run_script(tmp_path, "--stage", "1", flag)
    assert result.returncode == 0
    assert result.stdout.strip() == "Usage: demo.sh <dir>"


def test_help_under_set_u_without_help_message(tmp_path):
    result = run_script(tmp_path, "--help", help_message=None)
    assert result.returncode == 0, result.stderr
    assert "Usage: demo.sh" in result.stdout
    assert "unbound" not in result.stderr


def test_missing_value_is_an_error(tmp_path):
    result = run_script(tmp_path, "--stage")
    assert result.returncode == 1
    assert "missing value for option --stage" in result.stderr


def test_empty_cmd_is_an_error(tmp_path):
    result = run_script(tmp_path, "--cmd", "")
    assert result.returncode == 1
    assert "--cmd" in result.stderr


def test_empty_value_is_allowed_for_other_options(tmp_path):
    result = run_script(tmp_path, "--name", "")
    assert result.returncode == 0, result.stderr
    assert values(result)["name"] == ""


def test_helper_variables_do_not_leak(tmp_path):
    script = tmp_path / "leak.sh"
    script.write_text(
        f"set -euo pipefail\nstage=0\n. {PARSE_OPTIONS}\n"
        "declare -p | grep -c __po_ || true\ndeclare -F | grep -c __po_ || true\n"
    )
    result = subprocess.run(
        ["bash", str(script), "--stage", "1"], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0"]
