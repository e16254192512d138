"""Means over the scored samples and the tables of an evaluation (Markdown for RESULTS.md, rows for HTML).

Means: PER and CER are corpus rates (summed errors over summed reference length, as in
:func:`shirabe.eval.per.corpus_per`); the other metrics are plain means over the samples
(or songs, for the ground truth) that have them; ``over_budget`` is the share of samples
longer than the budget. ``count`` says how many samples (songs) each mean covers.
"""

from __future__ import annotations

import math

#: summary columns: (key, title, decimals)
COLUMNS = (
    ("per", "PER (%)", 1),
    ("cer", "CER (%)", 1),
    ("style_sim", "style SIM", 3),
    ("fd", "FD (MuQ)", 2),
    ("duration", "duration (s)", 1),
    ("budget_use", "budget use", 2),
    ("over_budget", "over budget", 2),
    ("duration_ratio_gt", "duration / GT", 2),
    ("structure_acc", "structure acc", 2),
    ("vocal_active", "vocal active", 2),
    ("nonvocal_active", "non-vocal active", 2),
)
RATES = {"per": ("per_errors", "per_ref_phones"), "cer": ("cer_edits", "cer_ref_chars")}
MEANS = ("style_sim", "duration", "budget_use", "over_budget", "duration_ratio_gt", "structure_acc", "vocal_active",
         "nonvocal_active")


def fmt(value, digits: int = 3) -> str:
    """A table cell: ``–`` for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def means(rows: list[dict]) -> tuple[dict, dict]:
    """``(mean, count)`` over ``rows`` (module docstring)."""
    mean, count = {}, {}
    for key, (errors, length) in RATES.items():
        have = [r for r in rows if r.get(errors) is not None and r.get(length)]
        if have:
            mean[key] = 100.0 * sum(r[errors] for r in have) / sum(r[length] for r in have)
            count[key] = len(have)
    for key in MEANS:
        values = [float(r[key]) for r in rows if r.get(key) is not None]
        if values:
            mean[key] = sum(values) / len(values)
            count[key] = len(values)
    return mean, count


def summary_rows(system: str, mean: dict, gt_mean: dict, num: dict, dev_keys: list[str],
                 dev: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and the two rows (the system; the ground-truth recordings, the ceiling) of the summary."""
    keys = [c for c in COLUMNS if c[0] in mean or c[0] in gt_mean]
    headers = ["", "songs", "samples", "missing"] + [title for _, title, _ in keys] + dev_keys
    row = [system, str(num["songs"]), str(num["samples"]), str(num["missing"])]
    row += [fmt(mean.get(k), d) for k, _, d in keys] + [fmt(dev.get(k), 4) for k in dev_keys]
    gt = ["ground truth (ceiling)", str(num["gt_songs"]), "–", "–"]
    gt += [fmt(gt_mean.get(k), d) for k, _, d in keys] + ["–" for _ in dev_keys]
    return headers, [row, gt]


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(h or "system" for h in headers) + " |",
             "|---|" + "---:|" * (len(headers) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
