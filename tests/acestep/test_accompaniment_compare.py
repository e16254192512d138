"""The blind comparison page (rendered in headless Chromium) and the statistics of its sheets."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from acestep.accompaniment.compare import AXIS_NAMES, blind_order, find_audio
from acestep.accompaniment.ratings import rating_statistics, read_sheet, read_sheets
from acestep.bin import compare, rating_stats
from shirabe.cli import InputError, run_main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (tools/install.sh installs it)")
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
SR = 16000
# Each system's files have their own duration, so a player's duration tells which system it plays.
DURATIONS = {"alpha": 0.6, "beta": 0.9, "gamma": 1.2}
VOCAL_SECONDS = 0.3
KEYS = ["song1", "song2", "song3"]


def write_tone(path: Path, seconds: float, freq: float = 220.0):
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, 0.1 * np.sin(2 * np.pi * freq * t), SR)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("systems")
    for name, seconds in DURATIONS.items():
        (root / name).mkdir()
        for key in KEYS:
            write_tone(root / name / f"{key}_accompaniment.wav", seconds)
    write_tone(root / "alpha" / "only_here_accompaniment.wav", 0.5)  # not made by every system: left out
    (root / "vocals").mkdir()
    for key in KEYS:
        write_tone(root / "vocals" / f"{key}_vocal.wav", VOCAL_SECONDS, 440.0)
    return root


@pytest.fixture(scope="module")
def page(folders):
    out = folders / "page"
    argv = ["--systems", *(f"{n}={folders / n}" for n in DURATIONS), "--vocals", str(folders / "vocals"),
            "--output-dir", str(out), "--seed", "3"]
    assert compare.main(argv) == 0
    return out / "index.html"


def test_page_hides_the_system_names(page):
    text = page.read_text(encoding="utf-8")
    for name in DURATIONS:
        assert name not in text
    files = sorted(p.name for p in (page.parent / "audio").iterdir())
    assert len(files) == 3 * 4 and all(not any(n in f for n in DURATIONS) for f in files)
    assert "only_here" not in text


def test_seeded_shuffle():
    systems = {n: {k: Path(f"{n}/{k}.wav") for k in "abcdef"} for n in ("x", "y", "z")}
    keys = list("abcdef")
    first, again = blind_order(systems, None, keys, 0), blind_order(systems, None, keys, 0)
    assert [(s.key, s.labelled) for s in first] == [(s.key, s.labelled) for s in again]
    orders = {tuple(name for _, name, _ in s.labelled) for s in first}
    assert len(orders) > 1  # the systems are not in one fixed order under the labels
    assert [s.key for s in first] != keys or [s.key for s in blind_order(systems, None, keys, 1)] != keys
    assert all([label for label, _, _ in s.labelled] == ["A", "B", "C"] for s in first)


def test_find_audio_needs_a_suffix_for_two_kinds(tmp_path):
    write_tone(tmp_path / "s1_accompaniment.wav", 0.1)
    write_tone(tmp_path / "s1_mix.wav", 0.1)
    with pytest.raises(InputError, match="two files for sample 's1'"):
        find_audio(tmp_path)
    assert set(find_audio(tmp_path, "_mix")) == {"s1"}


# Appended to a copy of the page: waits until every player has its metadata, rates system i (in
# page order) i % 5 + 1 on every axis, reads the name spans, reveals, exports, and writes what it
# saw into <body data-probe> (it exports once before and once after revealing), which --dump-dom returns.
PROBE = r"""<script>
(() => {
  const players = Array.from(document.querySelectorAll("audio"));
  const names = () => Array.from(document.querySelectorAll("span.revealed")).map(s => s.textContent);
  const done = () => {
    document.querySelectorAll("div.system").forEach((div, i) => {
      div.querySelectorAll("input[type=radio]").forEach(r => { r.checked = parseInt(r.value) === i % 5 + 1; });
    });
    document.getElementById("rater").value = "probe";
    const before = names();
    document.getElementById("export").click();
    const first = JSON.parse(document.getElementById("sheet-json").textContent).revealed_before_export;
    document.getElementById("reveal").click();
    document.getElementById("export").click();
    document.body.dataset.probe = JSON.stringify({before: before, first_revealed: first, players: players.map(a => {
      const div = a.closest("div.system");
      return {sample: a.closest("section").dataset.sample, label: div ? div.dataset.label : null,
              revealed: div ? div.querySelector("span.revealed").textContent : null,
              ready: a.readyState, duration: a.duration, error: a.error ? a.error.code : null};
    })});
  };
  let pending = players.length;
  const one = () => { if (--pending === 0) done(); };
  players.forEach(a => {
    if (a.readyState >= 1) one(); else { a.addEventListener("loadedmetadata", one); a.addEventListener("error", one); }
  });
})();
</script>"""


class ProbeReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.probe, self.sheet, self._in_pre = None, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body" and "data-probe" in a:
            self.probe = json.loads(a["data-probe"])
        self._in_pre = tag == "pre" and a.get("id") == "sheet-json"

    def handle_data(self, data):
        if self._in_pre:
            self.sheet = (self.sheet or "") + data

    def handle_endtag(self, tag):
        self._in_pre = False


@needs_chromium
def test_players_reveal_and_export_in_chromium(page):
    probe_page = page.with_name("probe.html")
    probe_page.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    r = subprocess.run([CHROMIUM, *HEADLESS, "--virtual-time-budget=10000", "--dump-dom", probe_page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = ProbeReader()
    dom.feed(r.stdout)
    assert dom.probe is not None, r.stdout[-2000:]
    assert dom.probe["before"] == [""] * 9  # names hidden until "reveal"
    players = dom.probe["players"]
    assert len(players) == 3 * 4
    for p in players:
        assert p["error"] is None and p["ready"] >= 1, p
        if p["label"] is None:
            assert p["duration"] == pytest.approx(VOCAL_SECONDS, abs=0.01)
        else:  # the revealed name is the system whose file the player plays
            name = p["revealed"].removeprefix("= ")
            assert p["duration"] == pytest.approx(DURATIONS[name], abs=0.01), p
    system_players = [p for p in players if p["label"] is not None]
    assert {p["sample"] for p in players} == set(KEYS)

    sheet = json.loads(dom.sheet)
    assert sheet["format"] == "acestep-accompaniment-ratings" and sheet["rater"] == "probe"
    assert dom.probe["first_revealed"] is False
    assert sheet["page_seed"] == 3 and sheet["revealed_before_export"] is True
    assert sheet["axes"] == list(AXIS_NAMES) and sheet["incomplete"] == []
    assert len(sheet["ratings"]) == 9
    for i, (rating, p) in enumerate(zip(sheet["ratings"], system_players)):
        assert (rating["sample_id"], rating["label"]) == (p["sample"], p["label"])
        assert rating["model"] == p["revealed"].removeprefix("= ")
        assert rating["scores"] == {axis: i % 5 + 1 for axis in AXIS_NAMES}
        assert rating["overall"] == i % 5 + 1
        assert sheet["mapping"][p["sample"]][p["label"]] == rating["model"]
    saved = page.with_name("sheet.json")
    saved.write_text(dom.sheet, encoding="utf-8")
    ratings = read_sheet(saved)
    assert sorted((x.sample_id, x.system) for x in ratings) == sorted((k, n) for k in KEYS for n in DURATIONS)


def make_sheet(path: Path, scores: dict[str, list[int]], rater: str = "r", flip: bool = False) -> Path:
    """A sheet rating systems (name -> one overall score per sample, used on every axis); the labels
    are assigned in reverse on odd samples when ``flip``."""
    names = sorted(scores)
    n = len(next(iter(scores.values())))
    mapping, ratings = {}, []
    for k in range(n):
        order = names[::-1] if flip and k % 2 else names
        mapping[f"s{k}"] = {chr(65 + i): name for i, name in enumerate(order)}
        for label, name in mapping[f"s{k}"].items():
            ratings.append({"sample_id": f"s{k}", "label": label, "model": None,
                            "scores": {axis: scores[name][k] for axis in AXIS_NAMES}, "comments": "",
                            "overall": float(scores[name][k])})
    path.write_text(json.dumps({"format": "acestep-accompaniment-ratings", "version": 1, "rater": rater,
                                "page_seed": 0, "mapping": mapping, "ratings": ratings}), encoding="utf-8")
    return path


def test_wilcoxon_separates_a_better_system(tmp_path):
    good = make_sheet(tmp_path / "a.json", {"good": [5, 4, 5, 4, 5, 4], "bad": [2, 1, 2, 3, 1, 2]}, flip=True)
    good2 = make_sheet(tmp_path / "b.json", {"good": [4, 5, 4, 5, 4, 5], "bad": [1, 2, 3, 2, 2, 1]})
    stats = rating_statistics(read_sheets([good, good2]))
    assert stats["systems"]["good"]["musicality"]["n"] == 12
    assert stats["systems"]["good"]["musicality"]["mean"] == pytest.approx(4.5)
    assert stats["systems"]["bad"]["overall"]["mean"] == pytest.approx(22 / 12)
    pairs = {p["axis"]: p for p in stats["pairs"]}
    assert set(pairs) == {*AXIS_NAMES, "overall"}
    for p in pairs.values():
        assert (p["a"], p["b"], p["n"]) == ("bad", "good", 12)
        assert p["p_value"] < 0.01 and p["mean_diff"] < 0


def test_wilcoxon_equal_ratings_show_no_difference(tmp_path):
    same = make_sheet(tmp_path / "a.json", {"x": [3, 4, 2, 5, 3, 4], "y": [3, 4, 2, 5, 3, 4]}, flip=True)
    mixed = make_sheet(tmp_path / "b.json", {"x": [5, 1, 5, 1, 5, 1], "y": [1, 5, 1, 5, 1, 5]})
    stats = rating_statistics(read_sheets([same]))
    assert all(p["p_value"] == 1.0 and p["statistic"] == 0.0 for p in stats["pairs"])
    stats = rating_statistics(read_sheets([mixed]))
    assert all(p["p_value"] > 0.5 for p in stats["pairs"])


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["ratings"][1]["scores"].update(musicality=7), "ratings[1].scores.musicality: must be an integer 1-5"),
    (lambda d: d["ratings"][0]["scores"].pop("vocal_leakage"), "ratings[0].scores.vocal_leakage: must be an integer"),
    (lambda d: d["ratings"][2].update(label="Z"), "ratings[2].label: 'Z' is not a label of sample"),
    (lambda d: d["ratings"][0].update(model="y"), "ratings[0].model: 'y' disagrees with the mapping"),
    (lambda d: d.update(format="other"), "format: expected 'acestep-accompaniment-ratings'"),
])
def test_malformed_sheet_is_one_line_naming_file_and_field(tmp_path, capsys, edit, field):
    path = make_sheet(tmp_path / "sheet.json", {"x": [3, 4], "y": [2, 5]})
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as info:
        run_main(rating_stats.main, [str(path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: {field}" in err[0], err


def test_rating_stats_binary_writes_json(tmp_path, capsys):
    sheet = make_sheet(tmp_path / "a.json", {"good": [5, 5, 4, 5, 4, 5, 5], "bad": [1, 2, 1, 1, 2, 1, 2]})
    out = tmp_path / "stats" / "stats.json"
    assert rating_stats.main([str(sheet), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bad vs good\toverall\t7\t" in printed
    saved = json.loads(out.read_text())
    assert saved["sheets"] == [str(sheet)] and saved["systems"]["good"]["audio_quality"]["n"] == 7
