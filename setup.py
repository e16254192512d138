"""Shirabe: Japanese speech and song generation toolkit."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_requirements(name):
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


# Folders without an __init__.py that hold files the code opens: shipped as data-only packages
# (so a wheel keeps them) with the files each one holds.
DATA_DIRS = {"shirabe.text.data": ["*.tsv"], "zipvoice.configs": ["*.json"], "songbloom.models.configs": ["*.yaml"]}

setup(
    name="shirabe",
    version="0.1.0",
    description="Japanese speech and song generation toolkit (TTS, SVC, song generation)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["shirabe*", "zipvoice*", "seedsvc*", "songbloom*", "acestep*", "songgeneration*"]) + list(DATA_DIRS),
    package_data={"shirabe.minicorpus": ["*.txt"], "songbloom.g2p": ["*.yaml"], "acestep.text": ["vocab.json"],
                  **DATA_DIRS},
    install_requires=read_requirements("requirements.txt"),
    extras_require={"dev": read_requirements("requirements-dev.txt")},
)
