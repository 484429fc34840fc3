"""Which pseudo-labeller, without the federation: each teacher's pseudo labels on every test actor.

For each seed (actor split), each teacher labels each test actor's clips by the method's rule (frame
mean, then at most P per class above the threshold, per actor) and the selection is scored against
the clips' true labels: precision per class, counts, and the frame-mean macro F1 on all labelled
test clips. Teachers: `affectnet` (the run's cached g()), `crema-frames` with uniform and peak
frame sampling (g() trained here on the training actors' frames), and optionally the FER-2013
model on the drawn faces' pixels (`--fer2013`, computed once for every clip and cached).

    python simulations/study_teachers.py --world small --seeds 0 1 2 --fer2013 --frames-epochs 5 \\
        --out results/study_teachers.md

Beside `--out` (Markdown) and its .json, `teachers-published.json` holds the same table stamped for the
docs (table `selection`): copy it into docs/results/teachers.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from study_args import study_parser

from fedfer.config import SYNTHETIC_PRESETS
from fedfer.data.datasets import task_classes
from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from fedfer.model.checkpoint import load_head
from fedfer.model.pseudo import clip_probabilities, select_pseudo_labels
from fedfer.model.training import train_head
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published, settings_of
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages
from fedfer.stages.sets import DEFAULT_FRAME_SAMPLING, FRAME_SAMPLING, FRAMES_PER_CLIP, crema_frame_sets

PIXEL_MODEL = "fer2013-mini-xception"  # the FER-2013 model on the faces' pixels (--fer2013)
# How the table names the frames each crema-frames g() is trained on (`fedfer.stages.sets.sample_frames`).
SAMPLING_TEXT = {"uniform": "uniform", "peak": "nearest the peak"}


def pixel_probabilities(prepared, cache: Path) -> dict[str, np.ndarray]:
    """{clip id: (K,) FER-2013 frame-mean probabilities} for every clip of the world, cached in `cache`."""
    from fedfer.data.fer2013 import video_probabilities
    from fedfer.data.store import npz_bytes

    if cache.is_file():
        with np.load(cache) as data:
            return {k: data[k] for k in data.files}
    clips = sorted(prepared.clips, key=lambda c: c.clip_id)
    probabilities = video_probabilities([c.path for c in clips], prepared.task.classes)
    out = {c.clip_id: p for c, p in zip(clips, probabilities)}
    atomic_write_bytes(cache, npz_bytes(**out))
    return out


def score(prepared, probabilities_of, options) -> dict:
    """Pseudo-label precision per class and counts (per-actor selection), and frame-mean macro F1."""
    classes = prepared.task.classes
    k = len(classes)
    cm = np.zeros((k, k), dtype=np.int64)
    truth, predicted = [], []
    for actor in sorted(prepared.split["test"]):
        clips = [c for c in prepared.clips if c.actor == actor]
        probabilities = probabilities_of(clips)  # (N, K), every clip of the subject (the unlabelled pool)
        p = options.federation.personalize
        chosen = select_pseudo_labels(probabilities, p.max_per_class, p.p_threshold)
        for i, label in zip(chosen.indices, chosen.labels):
            if clips[i].label is not None:
                cm[clips[i].label, label] += 1
        labelled = [i for i, c in enumerate(clips) if c.label is not None]
        truth += [clips[i].label for i in labelled]
        predicted += probabilities[labelled].argmax(axis=1).tolist()
    selected, correct = cm.sum(axis=0), np.diag(cm)
    return {
        "selected": dict(zip(classes, selected.tolist())),
        "precision": {c: (float(correct[i] / selected[i]) if selected[i] else None) for i, c in enumerate(classes)},
        "accuracy": float(correct.sum() / max(selected.sum(), 1)),
        "selected_total": int(selected.sum()),
        "frame_mean_macro_f1": evaluate_predictions(np.array(truth), np.array(predicted), classes).macro_f1,
    }


def teacher_label(name: str, synthetic: bool) -> str:
    """A teacher's row name: the frames each crema-frames g() was trained on, the faces the FER-2013 model saw."""
    for sampling, how in SAMPLING_TEXT.items():
        if name == f"crema-frames ({sampling})":
            default = " (default)" if sampling == DEFAULT_FRAME_SAMPLING else ""
            return f"crema-frames, {FRAMES_PER_CLIP} frames {how}{default}"
    if name == PIXEL_MODEL:
        return f"{name} ({'drawn faces' if synthetic else 'video frames'})"
    return name


def selection_table(results: dict[str, dict[int, dict]], classes: Sequence[str], synthetic: bool) -> dict:
    """Per teacher: precision of its selected clips per class (selected counts summed over seeds in
    brackets), then over all classes, selected clips per seed and the frame-mean macro F1, means over
    seeds in percent (docs table `teachers/selection`)."""
    columns = ["teacher", *classes, "all", "selected / seed", "frame-mean macro F1 (all test clips)"]
    rows = []
    for name, per_seed in results.items():
        runs = list(per_seed.values())
        cells = []
        for c in classes:
            n = sum(r["selected"][c] for r in runs)
            hits = sum((r["precision"][c] or 0) * r["selected"][c] for r in runs)
            cells.append(f"{100 * hits / n:.0f} ({n})" if n else "- (0)")
        acc = np.mean([r["accuracy"] for r in runs])
        sel = np.mean([r["selected_total"] for r in runs])
        f1 = np.mean([r["frame_mean_macro_f1"] for r in runs])
        rows.append([teacher_label(name, synthetic), *cells, f"{100 * acc:.1f}", f"{sel:.0f}", f"{100 * f1:.1f}"])
    return {"columns": columns, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/study_teachers.md", flags="run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fer2013", action="store_true", help="also the FER-2013 model on the faces' pixels")
    parser.add_argument(
        "--frames-epochs",
        type=int,
        help="epochs of the crema-frames g() trained here (default: --ifer-epochs); it keeps its best dev epoch",
    )
    args = parser.parse_args(argv)
    base = options_from_args(args)
    results: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:
        options = replace(base, task=replace(base.task, seed=seed), teacher=base.teacher)
        prepared = run_stages(options)
        teachers = {}
        if prepared.ifer is not None:
            teachers[prepared.teacher.name] = load_head(prepared.ifer, stage="ifer", classes=prepared.task.classes)[0]
        for sampling in FRAME_SAMPLING:
            sets = crema_frame_sets(prepared.store, prepared.clips, prepared.split["train"], sampling)
            config = replace(
                options.ifer,
                num_classes=options.task.num_classes,
                seed=seed,
                epochs=args.frames_epochs or options.ifer.epochs,
            )
            teachers[f"crema-frames ({sampling})"] = train_head(sets["train"], sets["dev"], config, progress=False)[0]
        for name, g in teachers.items():
            results.setdefault(name, {})[seed] = score(
                prepared,
                lambda clips, g=g, store=prepared.store: clip_probabilities(g, [store.load(c.clip_id) for c in clips]),
                options,
            )
        if args.fer2013:
            pixels = pixel_probabilities(
                prepared, args.out.with_name(f"{args.out.stem}-fer2013-{prepared.world.world_id}.npz")
            )
            results.setdefault(PIXEL_MODEL, {})[seed] = score(
                prepared, lambda clips, pixels=pixels: np.stack([pixels[c.clip_id] for c in clips]), options
            )
        print(json.dumps({name: r[seed]["accuracy"] for name, r in results.items()}), flush=True)

    p = base.federation.personalize
    table = selection_table(results, task_classes(base.task.num_classes), base.world in SYNTHETIC_PRESETS)
    lines = [
        f"# Pseudo labels per teacher: {base.world}, seeds {', '.join(map(str, args.seeds))}",
        "",
        f"P = {p.max_per_class}, threshold {p.p_threshold}, per test actor. "
        "Precision of the selected clips per class (selected counts summed over seeds in brackets); "
        "mean over seeds.",
        "",
        *markdown(table["columns"], table["rows"]),
    ]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    atomic_write_json(args.out.with_suffix(".json"), {n: {str(s): r for s, r in v.items()} for n, v in results.items()})
    settings = settings_of(
        base, "world", "world seed", "image size", "P", "threshold", seeds=" ".join(map(str, args.seeds))
    )
    atomic_write_json(args.out.with_name("teachers-published.json"), published({"selection": table}, settings))
    print(text)


if __name__ == "__main__":
    main()
