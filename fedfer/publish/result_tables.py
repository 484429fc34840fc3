"""Results tables pasted into the docs from data: `docs/results/<name>.json`.

A table's place in README.md or a page of docs/ is marked, and everything between the markers is
written by `paste_tables`:

    <!-- table: grid/summary -->
    ...the table and its stamp line...
    <!-- /table -->

`grid/summary` is the table `summary` of docs/results/grid.json; a bare `effect` is the file's first
(or only) table. A results file is either the generic form

    {"stamp": {...}, "tables": {"summary": {"columns": [...], "rows": [[...], ...], "stamp": {...}}}}

(a table's own "stamp" keys override the file's), or what a study writes itself: simulations/study_effect.py's
effect.json (table `methods`), fedfer/calibration/calibration_report.py's calibration.json (tables
`label_statistics`, `rendered`, `recheck`, `recheck_label_statistics`, `ideal_neutral`) and
simulations/bench_r2plus1d.py's price.json (tables `parameters`, `models`,
`bytes_up_per_client_per_round`). Under every table goes its stamp line
(`fedfer.evaluation.stamp.stamp_line`): commit, date, machine, load, world version and settings. A stamp with
"transcribed": true marks figures copied from a measurement's own report rather than written by the study.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedfer.evaluation.stamp import stamp_line

MARKER = re.compile(r"(<!-- table: ([\w.-]+(?:/[\w.-]+)?) -->\n)(.*?)(<!-- /table -->)", re.DOTALL)
CALIBRATED = 3  # the first calibrated world version (simulations/calibrate_world.py)
# How a results file that a study writes comes to docs/results/.
MAKERS = {
    "effect": "`python simulations/study_effect.py --out results/effect`, then copy results/effect/effect.json",
    "adapt-f": "`python simulations/study_adapt_f.py`, then copy results/adapt_f/adapt-f-published.json",
    "calibration": "`python simulations/calibrate_world.py`, then copy results/calibration/calibration.json",
    "r2plus1d": "`python simulations/bench_r2plus1d.py`, then copy results/r2plus1d/price.json",
    "r2plus1d-accuracy": "`python simulations/study_r2plus1d.py`, then copy results/r2plus1d/accuracy-published.json",
    "grid": "`python simulations/grid.py`, then copy results/grid/published.json",
    "dp": "`python simulations/study_dp.py`, then copy results/dp-published.json",
    "poisoning": "`python simulations/study_poisoning.py`, then copy results/poisoning-published.json",
    "teachers": "`python simulations/study_teachers.py`, then copy results/teachers-published.json",
    "communication": "`python simulations/bench_comm.py`, then copy results/comm/published.json",
    "onset": "`python simulations/glimpse_real_clips.py --onset`, then copy results/onset/onset.json",
}


def documents(root: Path) -> list[Path]:
    """README.md and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:g}"
    return "–" if value is None else str(value).replace("|", "\\|")


def markdown(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def interval(value: dict | None, signed: bool = False, scale: float = 100.0, digits: int = 1) -> str:
    """An `fedfer.evaluation.stats.Interval` as JSON ({mean, half_width, n}), in percent by default."""
    if not value or value.get("mean") is None or math.isnan(value["mean"]):
        return "–"
    mean = f"{scale * value['mean']:{'+' if signed else ''}.{digits}f}"
    return mean if value.get("n", 0) < 2 else f"{mean} ± {scale * value['half_width']:.{digits}f}"


def effect_methods(data: dict) -> tuple[list[str], list[list[Any]]]:
    """simulations/study_effect.py's comparison of the methods: round 1 (personalized) and after FedAvg."""
    columns = ["method", "personalized macro F1", "Δ vs central", "subjects ↑/=/↓ vs central (p)"]
    columns += ["Δ vs the paper's rule", "after FedAvg macro F1", "Δ vs central", "NEU recall (personalized)"]
    columns += ["labelled clips per subject", "client s per round", "MB per client per round"]
    rows = []
    for name, row in data["methods"].items():
        p, a = row["personalized"], row["after_fedavg"]
        vc = p["vs_central"]
        tally = f"{vc['improved']}/{vc['unchanged']}/{vc['worse']} (p {vc['wilcoxon_p']:.2g})"
        rows.append(
            [name, interval(p["macro_f1"]), interval(vc["macro_f1"], True), tally]
            + [interval(p["vs_paper"]["macro_f1"], True), interval(a["macro_f1"])]
            + [interval(a["vs_central"]["macro_f1"], True), interval(p["neu_recall"])]
            + [row["labelled_clips"], interval(row["seconds"], scale=1, digits=2)]
            + [f"{row['bytes_per_round'] / 1e6:.2f}"]
        )
    return columns, rows


def calibration_rows(key: str) -> Callable[[dict], tuple[list[str], list[list[Any]]]]:
    """fedfer/calibration/calibration_report.py's target / measured rows (percent for label statistics)."""

    def render(data: dict) -> tuple[list[str], list[list[Any]]]:
        scale = 100 if key.endswith("label_statistics") else 1
        rows = []
        for r in data[key]:
            name = r.get("statistic") or f"{r['table']} {r['class']}"
            half = "" if r["ci"] is None or math.isnan(r["ci"]) else f" ± {scale * r['ci']:.1f}"
            measured = f"{scale * r['mean']:.1f}{half}"
            rows.append([name, f"{scale * r['target']:.1f}", measured, f"±{scale * r['tolerance']:.0f}", r["ok"]])
        label = "statistic (%)" if key.endswith("label_statistics") else "table, class (F1, %)"
        return [label, "target", "measured (mean ± 95% CI)", "tolerance", "within"], rows

    return render


def ideal_neutral(data: dict) -> tuple[list[str], list[list[Any]]]:
    """fedfer/calibration/calibration_report.py: what the best possible g() (the stills annotator's own
    posterior) sees of Neutral on the planned clips, against the paper's threshold."""
    n = data["ideal_neutral"]
    rows = [
        ["Neutral recall (argmax of the frame mean)", f"{100 * n['neutral_recall']:.1f}%"],
        ["P(NEU) of the Neutral clips: mean / max", f"{n['p_neu_mean']:.2f} / {n['p_neu_max']:.2f}"],
        ["Neutral clips whose P(NEU) reaches p-threshold 0.5", f"{100 * n['p_neu_at_threshold']:.1f}%"],
        *([f"recall {c}", f"{100 * r:.0f}%"] for c, r in n["recall"].items()),
    ]
    return ["the ideal g() on the planned clips", "value"], rows


def price_blocks(data: dict) -> tuple[list[str], list[list[Any]]]:
    """simulations/bench_r2plus1d.py: parameters of each block."""
    return ["block", "parameters"], [[name, f"{n:,}"] for name, n in data["parameters"].items()]


def price_models(data: dict) -> tuple[list[str], list[list[Any]]]:
    """simulations/bench_r2plus1d.py: what a clip costs each model on this machine's CPU."""
    columns = ["model, input per clip", "parameters (trained)", "MACs per clip", "CPU time per clip, 1 thread"]
    columns += ["wall time per clip, 1 / 2 threads", "peak memory", "training step on 1 clip: CPU time, 1 thread"]
    columns += ["its peak memory", "federated: MB up per client per round (× v())"]
    sent = data["bytes_up_per_client_per_round"]
    v_bytes = sent["v() (fedfer)"]

    def federated(name: str) -> str:
        parts = ["v() (fedfer)"] if name.startswith("f()+v()") else ["whole network", "heads only"]
        return "; ".join(f"{p}: {sent[p] / 1e6:,.2f} ({sent[p] / v_bytes:,.1f}×)" for p in parts)

    rows = []
    for name, row in data["models"].items():
        seconds, step = row["inference"]["seconds"], row["training_step"]
        rows.append(
            [name, f"{row['parameters'] / 1e6:.2f} M ({row['trained_parameters'] / 1e6:.2f} M)"]
            + [f"{row['macs_per_clip'] / 1e9:.2f} G", f"{seconds['cpu_1_threads']:.3f} s"]
            + [f"{seconds['wall_1_threads']:.3f} / {seconds['wall_2_threads']:.3f} s"]
            + [f"{row['inference']['peak_above_bare_mib']:,.0f} MiB", f"{step['seconds']['cpu_1_threads']:.3f} s"]
            + [f"{step['peak_above_bare_mib']:,.0f} MiB", federated(name)]
        )
    return columns, rows


def price_bytes(data: dict) -> tuple[list[str], list[list[Any]]]:
    """simulations/bench_r2plus1d.py: bytes a client would send per round to federate each part."""
    sent = data["bytes_up_per_client_per_round"]
    v_bytes = sent["v() (fedfer)"]
    rows = [[name, f"{b:,}", f"{b / v_bytes:,.1f}"] for name, b in sent.items()]
    return ["federated, float32", "bytes up per client per round", "× v()"], rows


NATIVE = {  # tables of the files studies write themselves, by the key that marks them
    "methods": effect_methods,
    "label_statistics": calibration_rows("label_statistics"),
    "rendered": calibration_rows("rendered"),
    "recheck": calibration_rows("recheck"),
    "recheck_label_statistics": calibration_rows("recheck_label_statistics"),
    "ideal_neutral": ideal_neutral,
    "parameters": price_blocks,
    "models": price_models,
    "bytes_up_per_client_per_round": price_bytes,
}


def tables_of(data: dict) -> dict[str, tuple[list[str], list[list[Any]], dict]]:
    """Every table of a results file: name → (columns, rows, its stamp)."""
    stamp = data.get("stamp", {})
    if "tables" in data:
        return {name: (t["columns"], t["rows"], {**stamp, **t.get("stamp", {})}) for name, t in data["tables"].items()}
    return {key: (*render(data), stamp) for key, render in NATIVE.items() if data.get(key)}


def stamp_text(stamp: dict) -> str:
    """The stamp line; a world before the calibrated one says so, and a transcribed table too."""
    filled = {"commit": "–", "date": "–", "machine": "–", "load": "not recorded", **stamp}
    version = filled.get("world_version")
    line = stamp_line({**filled, "world_version": version if version is not None else "–"})
    if version is None:
        line = line.replace(" · world v–", " · no synthetic world")
    elif isinstance(version, int) and version < CALIBRATED:
        line = line.replace(f"world v{version}", f"world v{version} (uncalibrated)")
    if stamp.get("transcribed"):
        line = line.replace("</sub>", " · transcribed</sub>")
    return line


def render(name: str, results: Path) -> str:
    """The Markdown between the markers of table `name` (`file` or `file/table`)."""
    file, _, wanted = name.partition("/")
    path = results / f"{file}.json"
    if not path.is_file():
        how = MAKERS.get(file, "the study that measures it")
        return f"*No figures yet: `docs/results/{file}.json` is written from {how}.*\n"
    tables = tables_of(json.loads(path.read_text()))
    if not tables:
        raise ValueError(f"{path}: no table in it (expected 'tables' or one of {sorted(NATIVE)})")
    if wanted and wanted not in tables:
        raise ValueError(f"{path}: no table {wanted!r}; it has {sorted(tables)}")
    columns, rows, stamp = tables[wanted or next(iter(tables))]
    return "\n".join([*markdown(columns, rows), "", stamp_text(stamp), ""])


FENCE = re.compile(r"^```.*?^```[^\n]*$", re.DOTALL | re.MULTILINE)


def outside_code(text: str, change: Callable[[str], str]) -> str:
    """`text` with `change` applied to everything outside fenced code blocks (which may show markers)."""
    out, start = [], 0
    for block in FENCE.finditer(text):
        out += [change(text[start : block.start()]), block.group(0)]
        start = block.end()
    return "".join([*out, change(text[start:])])


def paste_tables(text: str, results: Path) -> str:
    """`text` with every table between markers written again from `results` (docs/results/)."""
    return outside_code(text, lambda t: MARKER.sub(lambda m: m.group(1) + render(m.group(2), results) + m.group(4), t))


def marked_tables(text: str) -> list[tuple[str, str]]:
    """(name, what stands between its markers) of every marked table in `text`, outside code blocks."""
    found: list[tuple[str, str]] = []
    outside_code(text, lambda t: found.extend((m.group(2), m.group(3)) for m in MARKER.finditer(t)) or t)
    return found
