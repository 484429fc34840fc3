"""The calibration report: every target against its tolerance, the candidates, the sensitivities,
the evaluation seeds' re-check, and what the best possible g() sees of Neutral.

Reads the stage files the runner wrote (crowd.json, stills.json, resting.json, rendered.json,
recheck.json and candidates.jsonl in one folder) and writes calibration.md, calibration.json and
calibration.png beside them. The label statistics of the calibration seeds and the ideal g() are
recomputed here from the planned world (minutes), so the report always describes the world the
code now draws.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fedfer.calibration.fitting import UNCALIBRATED
from fedfer.calibration.ideal import ideal_g, neutral_visibility
from fedfer.calibration.label_stats import label_statistics, plurality_label, read_voted_clips
from fedfer.calibration.planned import planned_label_statistics
from fedfer.calibration.targets import CENTRAL_TARGETS, STILLS_TARGETS, ScoreTarget, label_tolerance
from fedfer.evaluation.stamp import stamp, stamp_line
from fedfer.evaluation.stats import mean_ci
from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.synth.affectnet import plan_stills
from fedfer.synth.crema_d import plan_corpus
from fedfer.synth.presets import get_preset

THRESHOLD = 0.5  # the paper's p_threshold: the P(NEU) a clip needs to be selected as Neutral
# Modules whose presence would mean an adaptation result could have been computed.
ADAPTATION_MODULES = ("fedfer.model.pseudo", "fedfer.model.personalize", "fedfer.federation", "flwr")


def optional(out: Path, name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def adaptation_modules_loaded() -> list[str]:
    return sorted(m for m in sys.modules if any(m == a or m.startswith(a + ".") for a in ADAPTATION_MODULES))


def interval(values: Sequence[float]) -> tuple[float, float]:
    ci = mean_ci(values)
    return ci.mean, ci.half_width


def fmt(mean: float, half: float, scale: float = 1.0) -> str:
    return f"{scale * mean:.1f}" + ("" if np.isnan(half) else f" ± {scale * half:.1f}")


def label_rows(real: Mapping[str, float], per_seed: Sequence[Mapping[str, float]]) -> list[dict]:
    rows = []
    for key, target in real.items():
        mean, half = interval([s[key] for s in per_seed])
        tol = label_tolerance(key)
        rows.append(
            {
                "statistic": key,
                "target": target,
                "mean": mean,
                "ci": half,
                "tolerance": tol,
                "ok": abs(mean - target) <= tol,
            }
        )
    return rows


def score_rows(targets: Sequence[ScoreTarget], per_seed: Sequence[Mapping[str, float]]) -> list[dict]:
    rows = []
    for t in targets:
        for cls, (_, _, f1) in t.scores.items():
            key = f"{t.key}_{cls}_f1"
            if not per_seed or key not in per_seed[0]:
                continue
            mean, half = interval([s[key] for s in per_seed])
            tol = t.macro_tolerance if cls == "macro" else t.class_tolerance
            rows.append(
                {
                    "table": t.key,
                    "class": cls,
                    "target": f1,
                    "mean": mean,
                    "ci": half,
                    "tolerance": tol,
                    "ok": abs(mean - f1) <= tol,
                }
            )
    return rows


def markdown_rows(rows: Sequence[dict], scale: float, label: str) -> list[str]:
    lines = [f"| {label} | target | measured (mean ± 95% CI) | tolerance | within |", "|---|---|---|---|---|"]
    for r in rows:
        name = r.get("statistic") or f"{r['table']} {r['class']}"
        lines.append(
            f"| {name} | {scale * r['target']:.1f} | {fmt(r['mean'], r['ci'], scale)} | ±{scale * r['tolerance']:.0f}"
            f" | {'yes' if r['ok'] else '**no**'} |"
        )
    return lines


def ideal_neutral(preset: str, seed: int) -> dict:
    """What the best g() sees of Neutral in the planned `preset` world of `seed` (6 classes, AV labels)."""
    world = get_preset(preset)
    train, _ = plan_stills(world.affectnet, seed)
    clips = plan_corpus(world.crema_d, world.raters, seed)
    labels = [plurality_label(c.ratings["av"].counts) for c in clips]
    return neutral_visibility(ideal_g(train, 6, world.affectnet.annotator), clips, labels, THRESHOLD)


def sensitivity_rows(sensitivity: Mapping[str, Mapping[str, float]], top: int = 3) -> list[str]:
    """Per knob, the targets it moves most (change of the statistic per unit of the knob)."""
    knobs = next(iter(sensitivity.values())).keys()
    lines = ["| knob | moves most (change per unit of the knob) |", "|---|---|"]
    for knob in knobs:
        effects = sorted(((t, d[knob]) for t, d in sensitivity.items()), key=lambda x: -abs(x[1]))[:top]
        lines.append(f"| `{knob}` | " + "; ".join(f"{t} {v:+.3g}" for t, v in effects) + " |")
    return lines


def write(out: Path, real_labels: Path, seeds: Sequence[int], pool) -> dict:
    """Write calibration.md / .json / .png into `out`; returns the JSON."""
    header = stamp(preset="small", image_size=224, batchnorm="keras", teacher="affectnet")
    real = label_statistics(read_voted_clips(real_labels))
    calib_labels = pool.map(_labels_of_seed, seeds)
    crowd, stills, resting = optional(out, "crowd"), optional(out, "stills"), optional(out, "resting")
    rendered, recheck = optional(out, "rendered"), optional(out, "recheck")
    result: dict = {"stamp": header, "calibration_seeds": list(seeds)}
    md = [
        "# Calibration of the synthetic world",
        "",
        stamp_line(header),
        "",
        "Targets are published inputs only: CREMA-D's label statistics (the real label files), Table 1 (g() on the",
        "stills) and the Before columns of Tables 2-5 and seed 002 (the central v()). Calibration seeds: "
        + ", ".join(map(str, seeds))
        + ". Intervals are 95% Student-t over the seeds.",
        "",
        f"Adaptation modules loaded while this report was computed: {adaptation_modules_loaded() or 'none'}.",
        "",
        "## CREMA-D label statistics (planned `full` corpus)",
        "",
    ]
    rows = label_rows(real, calib_labels)
    result["label_statistics"] = rows
    md += markdown_rows(rows, 100, "statistic (%)")
    md += ["", f"{sum(r['ok'] for r in rows)} of {len(rows)} within tolerance.", ""]
    if rendered:
        per_seed = [r["scores"] for r in rendered["rows"]]
        rows = score_rows(STILLS_TARGETS + CENTRAL_TARGETS, per_seed)
        result["rendered"] = rows
        md += ["## g() and the central v()s, rendered `small` worlds (F1, %)", ""]
        md += markdown_rows(rows, 1, "table, class")
        md += ["", f"{sum(r['ok'] for r in rows)} of {len(rows)} within tolerance.", ""]
    if recheck:
        planned = recheck.get("seeds", "200-209")
        md += [f"## Re-checked on the evaluation seeds (frozen world; planned: {planned})", ""]
        rows = label_rows(real, recheck["label_statistics"])
        result["recheck_label_statistics"] = rows
        md += markdown_rows(rows, 100, "statistic (%)")
        md += ["", f"Label statistics: {sum(r['ok'] for r in rows)} of {len(rows)} within tolerance.", ""]
        if recheck["central"]:
            rows = score_rows(STILLS_TARGETS + CENTRAL_TARGETS, [r["scores"] for r in recheck["central"]])
            result["recheck"] = rows
            worlds = sorted({r["seed"] for r in recheck["central"]})
            splits = sorted({r["split"] for r in recheck["central"]})
            md += [f"Rendered evaluation worlds {worlds}, splits {splits} (F1, %):", ""]
            md += markdown_rows(rows, 1, "table, class")
        else:
            md += ["g() and the central v()s were not re-rendered on the evaluation seeds (no rendered seeds given)."]
        md += [""]
    neutral = ideal_neutral("small", seeds[0])
    result["ideal_neutral"] = neutral
    md += [
        "## What the best possible g() sees of Neutral",
        "",
        "The stills annotator's own posterior (class-weighted as g() is trained), frame by frame on the planned",
        f"`small` clips of world seed {seeds[0]}, frame mean per clip (fedfer.calibration.ideal):",
        "",
        f"- Neutral recall {100 * neutral['neutral_recall']:.1f}%; P(NEU) of the NEU-labelled clips: mean "
        f"{neutral['p_neu_mean']:.2f}, max {neutral['p_neu_max']:.2f}; "
        f"{100 * neutral['p_neu_at_threshold']:.1f}% reach the threshold {THRESHOLD}.",
        "- Recall per class: " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in neutral["recall"].items()) + ".",
        "",
    ]
    md += knob_section(crowd, stills, resting, out, result)
    _plot(out / "calibration.png", result, rendered)
    atomic_write_json(out / "calibration.json", result)
    atomic_write_text(out / "calibration.md", "\n".join(md) + "\n")
    return result


def knob_section(crowd, stills, resting, out: Path, result: dict) -> list[str]:
    md = ["## Knobs", ""]
    fitted = {
        **(crowd or {}).get("values", {}),
        **(stills or {}).get("values", {}),
        **(resting or {}).get("values", {}),
    }
    result["knobs"] = {k: {"uncalibrated": UNCALIBRATED.get(k), "calibrated": v} for k, v in fitted.items()}
    md += ["| knob | uncalibrated | calibrated |", "|---|---|---|"]
    md += [f"| `{k}` | {UNCALIBRATED.get(k, float('nan')):.3g} | {v:.3g} |" for k, v in fitted.items()]
    candidates = (
        [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]
        if (out / "candidates.jsonl").is_file()
        else []
    )
    by_stage = Counter(c["stage"] for c in candidates)
    result["candidates"] = dict(by_stage)
    md += ["", "Candidates tried (every one is a line of candidates.jsonl with its knobs and statistics): "]
    md += ["", ", ".join(f"{s} {n}" for s, n in by_stage.items()) + ".", ""]
    if resting:
        md += [
            "Resting-face share scanned on rendered world seed 100 (the central v()'s Neutral, Table 2 and seed 002):",
            "",
        ]
        md += ["| share | T2 NEU P | T2 NEU R | s002 NEU P | s002 NEU R | distance |", "|---|---|---|---|---|---|"]
        for row in resting["scan"]:
            s = row["scores"]
            md.append(
                f"| {row['share']:.2f} | {s['table2_NEU_precision']:.1f} | {s['table2_NEU_recall']:.1f} | "
                f"{s['seed002_NEU_precision']:.1f} | {s['seed002_NEU_recall']:.1f} | {row['distance']:.2f} |"
            )
        md += [""]
    for name, stage in (("crowd", crowd), ("stills", stills)):
        if stage:
            md += [f"Sensitivities of the {name} stage:", ""] + sensitivity_rows(stage["sensitivity"]) + [""]
    return md


def _labels_of_seed(seed: int) -> dict[str, float]:
    return planned_label_statistics({}, preset="full", seeds=(seed,))


def _plot(path: Path, result: dict, rendered: dict | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    rows = result["label_statistics"]
    z = [(r["mean"] - r["target"]) / r["tolerance"] for r in rows]
    axes[0].barh(range(len(z)), z, color=["tab:green" if abs(v) <= 1 else "tab:red" for v in z])
    axes[0].set_yticks(range(len(z)), [r["statistic"] for r in rows], fontsize=5)
    axes[0].axvline(-1, ls=":", c="k")
    axes[0].axvline(1, ls=":", c="k")
    axes[0].set_title("label statistics: (measured − target) / tolerance")
    scored = result.get("recheck") or result.get("rendered") or []
    if scored:
        z = [(r["mean"] - r["target"]) / r["tolerance"] for r in scored]
        axes[1].barh(range(len(z)), z, color=["tab:green" if abs(v) <= 1 else "tab:red" for v in z])
        axes[1].set_yticks(range(len(z)), [f"{r['table']} {r['class']}" for r in scored], fontsize=5)
        axes[1].axvline(-1, ls=":", c="k")
        axes[1].axvline(1, ls=":", c="k")
        axes[1].set_title("F1 targets: (measured − target) / tolerance")
    bins = np.linspace(0, 1, 21)
    hist = result["ideal_neutral"]["p_neu_histogram"]
    axes[2].bar(
        bins[:-1], hist / np.maximum(1, np.sum(hist)), width=0.05, align="edge", alpha=0.5, label="ideal g(), planned"
    )
    if rendered:
        learned = [x for r in rendered["rows"] for x in r.get("neutral_confidence", {}).get("neutral", [])]
        if learned:
            counts, _ = np.histogram(learned, bins=bins)
            axes[2].step(
                bins[:-1], counts / max(1, counts.sum()), where="post", c="tab:red", label="learned g(), rendered"
            )
    axes[2].axvline(THRESHOLD, c="k", ls="--", label=f"threshold {THRESHOLD}")
    axes[2].set_xlabel("frame-mean P(NEU) of NEU-labelled clips")
    axes[2].set_ylabel("share of clips")
    axes[2].legend()
    axes[2].set_title("Neutral as the teacher sees it")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
