"""The HTML report rendered by a real browser (headless Chromium): players, tables, the plot and
its Japanese text (a Japanese font must be installed: tools/install.sh installs IPAexGothic)."""

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
import soundfile as sf

from shirabe.eval.fonts import JAPANESE_FONT_FAMILIES
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
        self.font_probe = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and "data-font-probe" in a:
            self.font_probe = json.loads(a["data-font-probe"])
        elif tag == "audio":
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


# Appended to a copy of the report: measures how the browser set the first item's Japanese text
# (.text) and writes the figures into <body data-font-probe>, which --dump-dom returns.
FONT_PROBE = r"""<script>
(() => {
  const GENERIC = ["serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui"];
  const el = document.querySelector(".text");
  const style = getComputedStyle(el);
  const stack = style.fontFamily;
  const named = stack.split(",").map(f => f.trim().replace(/^"|"$/g, "")).filter(f => !GENERIC.includes(f));
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 64;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const width = (text, font) => { ctx.font = font; return ctx.measureText(text).width; };
  // A family is there when a string set in it with two different generic fallbacks has one
  // width; a missing family leaves each fallback's own width.
  const sample = "mmmmmmmmmmlli WWW 0123456789";
  const present = f => width(sample, `32px "${f}", monospace`) === width(sample, `32px "${f}", serif`);
  const ink = ch => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = `48px ${stack}`;
    ctx.fillText(ch, 4, 52);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data.filter((_, i) => i % 4 === 3));
  };
  const same = (a, b) => a.every((v, i) => v === b[i]);
  const [hi, go, none] = [ink("\u65e5"), ink("\u8a9e"), ink("\u0378")];  // 日, 語, unassigned
  const range = document.createRange();
  range.selectNodeContents(el);
  document.body.dataset.fontProbe = JSON.stringify({
    stack, installed: named.filter(present), control_present: present("NoSuchFamily Shirabe"),
    text: el.textContent, text_px: Array.from(range.getClientRects()).reduce((w, r) => w + r.width, 0), font_px: parseFloat(style.fontSize),
    ink: hi.filter(v => v > 0).length, kanji_differ: !same(hi, go), kanji_vs_missing: !same(hi, none),
  });
})();
</script>"""


def font_probe(index, env=None) -> dict:
    """Render a copy of the report with FONT_PROBE in Chromium; returns the probe's figures."""
    page = index.with_name("font_probe.html")
    page.write_text(index.read_text(encoding="utf-8").replace("</body>", FONT_PROBE + "</body>"), encoding="utf-8")
    r = subprocess.run([CHROMIUM, *HEADLESS, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = DomCounter()
    dom.feed(r.stdout)
    assert dom.font_probe is not None, r.stdout[-2000:]
    return dom.font_probe


def glyphs_render(probe) -> bool:
    """Every character of the item text full-width (1 em; a missing glyph's box is narrower), and
    different kanji drawn differently, and unlike a character no font has (.notdef boxes)."""
    full_width = probe["text_px"] >= 0.9 * len(probe["text"]) * probe["font_px"]
    return full_width and probe["ink"] > 0 and probe["kanji_differ"] and probe["kanji_vs_missing"]


@needs_chromium
def test_japanese_text_renders_in_chromium(report):
    probe = font_probe(report)
    assert probe["text"] == "今日は晴れ。"
    # the page asks for Japanese families, and one of them is installed (the check itself can
    # tell a missing family: the control is reported absent)
    assert probe["installed"] and set(probe["installed"]) <= set(JAPANESE_FONT_FAMILIES), probe
    assert probe["control_present"] is False, probe
    assert glyphs_render(probe), probe


@needs_chromium
def test_missing_japanese_glyphs_are_detected(report, tmp_path):
    """The same probe in a Chromium whose fontconfig hides every font with kanji: the glyph checks fail."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        pytest.skip("fc-list not installed")
    files = set()
    for code in ("65e5", "8a9e", "4eca", "6674"):  # 日 語 今 晴
        out = subprocess.run([fc_list, f":charset={code}", "file"], capture_output=True, text=True, check=True)
        files |= {ln.rstrip().rstrip(":") for ln in out.stdout.splitlines() if ln.strip()}
    globs = "".join(f"<glob>{f}</glob>" for f in sorted(files))
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    f'<include ignore_missing="yes">{os.environ.get("FONTCONFIG_FILE", "/etc/fonts/fonts.conf")}</include>'
                    f"<selectfont><rejectfont>{globs}</rejectfont></selectfont></fontconfig>", encoding="utf-8")
    probe = font_probe(report, env={**os.environ, "FONTCONFIG_FILE": str(conf)})
    assert probe["installed"] == [], probe
    assert not glyphs_render(probe), probe
