"""The wheel: built without setuptools warnings, installed into a fresh venv away from the source
tree, its command-line tools run, and every data file the code opens is inside it."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("shirabe", "zipvoice", "seedsvc", "songbloom", "acestep")
BUILD_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "requirements.txt", "requirements-dev.txt")
# Data files the code is known to open; the test finds the rest by their names in the code.
KNOWN_DATA = {"shirabe/text/data/openjtalk_ipa.tsv", "shirabe/minicorpus/sentences_ja.txt",
              "zipvoice/configs/zipvoice_base.json", "songbloom/g2p/vocab_g2p.yaml"}

MODEL_PROBE = """
import json, shirabe, zipvoice.models
from shirabe.minicorpus.sentences import POOL_FILE, load_pool
from shirabe.text.ipa import ipa_map
from zipvoice.models import BASE_CONFIG, build_model, read_config
model = build_model(read_config(BASE_CONFIG)["model"], vocab_size=360, pad_id=0)
print(json.dumps({"files": [shirabe.__file__, zipvoice.models.__file__, str(BASE_CONFIG), str(POOL_FILE)],
                  "params": sum(p.numel() for p in model.parameters()), "sentences": len(load_pool()),
                  "ipa_a": list(ipa_map()["a"])}))
"""


def source_files() -> list[str]:
    """Files of the packages and of the build set-up, as git sees them (new files included)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "--", *PACKAGES, *BUILD_FILES], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.splitlines() if (REPO / f).is_file()]


def referenced_data_files(files: list[str]) -> set[str]:
    """Non-Python files under the package folders whose name appears in the packages' code."""
    code = "\n".join((REPO / f).read_text(encoding="utf-8") for f in files if f.endswith(".py"))
    data = [f for f in files if f.split("/")[0] in PACKAGES and not f.endswith(".py")]
    return {f for f in data if Path(f).name in code}


def run(cmd, cwd, env, timeout=300):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow  # 10 s on an idle 2-core machine, 35-40 s on a busy one
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    files = source_files()
    data = referenced_data_files(files)
    assert KNOWN_DATA <= data, data

    # build from a copy, so the checkout gets no build/ or *.egg-info
    src = tmp_path / "src"
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, src / f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = run([*pip, "wheel", src, "--no-deps", "--no-build-isolation", "-v", "-w", tmp_path / "dist"],
                tmp_path, env)
    log = build.stdout + build.stderr
    assert "Successfully built shirabe" in log
    assert not re.findall(r".*warn.*", log, flags=re.IGNORECASE), re.findall(r".*warn.*", log, flags=re.I)
    (wheel,) = (tmp_path / "dist").glob("shirabe-*.whl")
    with zipfile.ZipFile(wheel) as z:
        record_name = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
        record = {line.split(",")[0] for line in z.read(record_name).decode().splitlines()}
    assert data <= record, sorted(data - record)

    # a fresh venv: the dependencies come from this venv's site-packages (a .pth line), the
    # source tree is not on its path
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    py = venv / "bin" / "python"
    purelib = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
                       env).stdout.strip())
    (purelib / "shirabe_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run([*pip, "--python", py, "install", "--no-deps", "--no-index", wheel], tmp_path, env)

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert "--model-dir" in run([py, "-m", "zipvoice.bin.infer_zipvoice", "--help"], cwd, env).stdout
    assert "--reference" in run([py, "-m", "seedsvc.bin.convert", "--help"], cwd, env).stdout
    # 今日 (kyo]o), 良い (yo]i), 天気 (te]Nki): the dictionary accents, devoiced final su
    g2p = run([py, "-m", "shirabe.bin.g2p", "今日は良い天気です"], cwd, env).stdout
    assert g2p == "^ ky o ] o w a # y o ] i # t e ] N k i d e s U $\n"

    probe = json.loads(run([py, "-c", MODEL_PROBE], cwd, env).stdout)
    for f in probe["files"]:
        assert Path(f).resolve().is_relative_to(purelib.resolve()), f
    assert 120e6 < probe["params"] < 125e6  # the base ZipVoice has about 123 M parameters
    assert probe["sentences"] > 50 and probe["ipa_a"] == ["a"]
    installed = {str(p.relative_to(purelib)) for p in purelib.rglob("*") if p.is_file()}
    assert data <= installed, sorted(data - installed)
