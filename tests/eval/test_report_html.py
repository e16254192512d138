"""The HTML report rendered by a real browser (headless Chromium): players, tables and the plot."""

import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf

from shirabe.eval.plot import scatter_png
from shirabe.eval.report import AudioRow, AudioSection, Table, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tools/install.sh installs it)")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]


class DomCounter(HTMLParser):
    """Audio sources, table rows (per table) and images of a rendered DOM."""

    def __init__(self):
        super().__init__()
        self.audio, self.images, self.tables = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "audio":
            self.audio.append(a.get("src"))
        elif tag == "img":
            self.images.append(a.get("src"))
        elif tag == "table":
            self.tables.append(0)
        elif tag == "tr" and self.tables:
            self.tables[-1] += 1


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    wavs = {}
    for k, name in enumerate(["prompt", "truth", "full", "lora"]):
        wavs[name] = d / f"{name}.wav"
        sf.write(wavs[name], 0.1 * np.sin(2 * np.pi * (200 + 50 * k) * np.arange(8000) / 16000), 16000)
    png = scatter_png([("full", 5.1, 0.41), ("lora", 4.9, 0.62), ("pretrained", 6.0, float("nan"))],
                      d / "plot.png", "MCD (dB)", "SIM", title="SIM vs MCD")
    table = Table("metrics", ["strategy", "MCD", "SIM"], [["full", "5.10", "0.41"], ["lora", "4.90", "0.62"]])
    rows = [AudioRow("utt_1", "今日は晴れ。", {"prompt": wavs["prompt"], "ground truth": wavs["truth"],
                                            "full": wavs["full"], "lora": wavs["lora"]}),
            AudioRow("utt_2", "雨です。", {"prompt": wavs["prompt"], "full": wavs["full"], "lora": None})]
    index = write_report(d / "out", "Study", intro="intro", tables=[table], images=[("SIM vs MCD", png)],
                         audio_sections=[AudioSection("fine-tuned speakers", ["prompt", "ground truth", "full", "lora"],
                                                      rows)])
    png.unlink()
    for w in wavs.values():  # the report must not depend on the originals
        w.unlink()
    return index


@needs_chromium
def test_players_tables_and_plot_render_in_chromium(report):
    r = subprocess.run([CHROMIUM, *HEADLESS, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = DomCounter()
    dom.feed(r.stdout)
    # utt_1 has all four sources, utt_2 has two: six players, every one pointing at a copied file
    assert len(dom.audio) == 6
    assert all((report.parent / src).is_file() for src in dom.audio)
    assert dom.tables == [3, 3]  # metrics: header + 2 strategies; audio grid: header + 2 items
    assert "<td>5.10</td>" in r.stdout and "今日は晴れ。" in r.stdout
    assert len(dom.images) == 1 and (report.parent / dom.images[0]).is_file()

    shot = report.parent / "shot.png"
    r = subprocess.run([CHROMIUM, *HEADLESS, f"--screenshot={shot}", "--window-size=1000,1400", report.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    # the plot (an image several hundred pixels tall) and the players make a busy page, not a blank one
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


def test_report_is_self_contained(report):
    html = report.read_text(encoding="utf-8")
    for src in re.findall(r'src="([^"]+)"', html):
        assert not src.startswith("/") and (report.parent / src).is_file()
