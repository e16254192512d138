"""Evaluation sheets exported by the blind comparison page: reading, un-blinding and statistics.

:func:`read_sheet` checks a sheet (format of :mod:`acestep.accompaniment.compare`) field by field
and un-blinds it through its ``mapping``: every rating becomes ``(sample_id, system, scores)``.
:func:`rating_statistics` summarises the sheets:

- per system and axis (the five axes and ``overall`` = their mean): mean, sample standard
  deviation (``ddof=1``; null for one rating) and count;
- per pair of systems and axis: the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided,
  zero differences dropped) over paired ratings. A pair is the two systems' ratings of one sample on
  one sheet (one rater). When every difference is zero the test is undefined; the result is then
  ``statistic 0, p 1`` (no evidence of a difference).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acestep.accompaniment.compare import AXIS_NAMES, SHEET_FORMAT, SHEET_VERSION
from shirabe.cli import InputError

STAT_AXES = (*AXIS_NAMES, "overall")


@dataclass(frozen=True)
class Rating:
    sheet: int
    sample_id: str
    system: str
    scores: dict[str, float]  # the five axes and "overall"


def _fail(path: Path, where: str, message: str) -> InputError:
    return InputError(f"{path}: {where}: {message}")


def read_sheet(path: str | Path, index: int = 0) -> list[Rating]:
    """The un-blinded ratings of one exported sheet (``index`` tells sheets apart when pairing)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: sheet not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not readable ({exc})") from None
    if not isinstance(data, dict):
        raise _fail(path, "<top>", "expected a JSON object")
    if data.get("format") != SHEET_FORMAT:
        raise _fail(path, "format", f"expected {SHEET_FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != SHEET_VERSION:
        raise _fail(path, "version", f"expected {SHEET_VERSION}, got {data.get('version')!r}")
    mapping = data.get("mapping")
    if not isinstance(mapping, dict) or not all(
            isinstance(v, dict) and all(isinstance(k, str) and isinstance(s, str) for k, s in v.items())
            for v in mapping.values()):
        raise _fail(path, "mapping", "expected an object {sample_id: {label: system}}")
    ratings = data.get("ratings")
    if not isinstance(ratings, list):
        raise _fail(path, "ratings", "expected a list")
    out, seen = [], set()
    for i, item in enumerate(ratings):
        where = f"ratings[{i}]"
        if not isinstance(item, dict):
            raise _fail(path, where, "expected an object")
        sample = item.get("sample_id")
        if not isinstance(sample, str) or sample not in mapping:
            raise _fail(path, f"{where}.sample_id", f"{sample!r} is not a sample of the sheet's mapping")
        label = item.get("label")
        if not isinstance(label, str) or label not in mapping[sample]:
            raise _fail(path, f"{where}.label", f"{label!r} is not a label of sample {sample!r} "
                                                f"(allowed: {', '.join(mapping[sample])})")
        system = mapping[sample][label]
        model = item.get("model")
        if model is not None and model != system:
            raise _fail(path, f"{where}.model", f"{model!r} disagrees with the mapping ({sample}/{label} = {system!r})")
        if (sample, label) in seen:
            raise _fail(path, where, f"{sample}/{label} is rated twice")
        seen.add((sample, label))
        scores = item.get("scores")
        if not isinstance(scores, dict):
            raise _fail(path, f"{where}.scores", "expected an object of the five axes")
        extra = sorted(set(scores) - set(AXIS_NAMES))
        if extra:
            raise _fail(path, f"{where}.scores.{extra[0]}", f"unknown axis (allowed: {', '.join(AXIS_NAMES)})")
        values = {}
        for axis in AXIS_NAMES:
            v = scores.get(axis)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5:
                raise _fail(path, f"{where}.scores.{axis}", f"must be an integer 1-5, got {v!r}")
            values[axis] = float(v)
        values["overall"] = float(np.mean([values[a] for a in AXIS_NAMES]))
        out.append(Rating(index, sample, system, values))
    return out


def read_sheets(paths: list[str | Path]) -> list[Rating]:
    return [r for i, p in enumerate(paths) for r in read_sheet(p, i)]


def _wilcoxon(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    from scipy.stats import wilcoxon

    if len(x) == 0:
        return None, None
    if np.all(x == y):
        return 0.0, 1.0
    result = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def rating_statistics(ratings: list[Rating]) -> dict:
    """``{"systems": {name: {axis: {mean, sd, n}}}, "pairs": [{a, b, axis, n, mean_diff, statistic, p_value}]}``."""
    systems = sorted({r.system for r in ratings})
    by_unit: dict[tuple[int, str], dict[str, Rating]] = {}
    per_system: dict[str, list[Rating]] = {s: [] for s in systems}
    for r in ratings:
        by_unit.setdefault((r.sheet, r.sample_id), {})[r.system] = r
        per_system[r.system].append(r)
    summary = {}
    for s in systems:
        summary[s] = {}
        for axis in STAT_AXES:
            v = np.array([r.scores[axis] for r in per_system[s]])
            summary[s][axis] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
                                "n": int(len(v))}
    pairs = []
    for a, b in itertools.combinations(systems, 2):
        units = [u for u in by_unit.values() if a in u and b in u]
        for axis in STAT_AXES:
            x = np.array([u[a].scores[axis] for u in units])
            y = np.array([u[b].scores[axis] for u in units])
            statistic, p = _wilcoxon(x, y)
            pairs.append({"a": a, "b": b, "axis": axis, "n": len(units),
                          "mean_diff": float(np.mean(x - y)) if len(units) else None,
                          "statistic": statistic, "p_value": p})
    return {"systems": summary, "pairs": pairs}


def format_statistics(stats: dict) -> str:
    """A plain-text table of :func:`rating_statistics`."""
    lines = ["system\taxis\tmean ± sd\tn"]
    for s, axes in stats["systems"].items():
        for axis, v in axes.items():
            sd = "-" if v["sd"] is None else f"{v['sd']:.2f}"
            lines.append(f"{s}\t{axis}\t{v['mean']:.2f} ± {sd}\t{v['n']}")
    lines.append("")
    lines.append("a vs b\taxis\tn pairs\tmean(a-b)\tW\tp")
    for p in stats["pairs"]:
        if p["n"] == 0:
            lines.append(f"{p['a']} vs {p['b']}\t{p['axis']}\t0\t-\t-\t-")
            continue
        pv = p["p_value"]
        lines.append(f"{p['a']} vs {p['b']}\t{p['axis']}\t{p['n']}\t{p['mean_diff']:+.2f}\t{p['statistic']:g}\t"
                     f"{'nan' if pv is None or math.isnan(pv) else f'{pv:.4g}'}")
    return "\n".join(lines)
