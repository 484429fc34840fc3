"""The central heads scored on held-out data: what `fedfer train` and `fedfer evaluate` write.

`central_eval.json` (per-class precision/recall/F1, macro and micro means, UAR, WAR, confusion
matrices), `central_eval.md` (tables shaped like the paper's) and one confusion PNG per model.
"""

from __future__ import annotations

from pathlib import Path

from fedfer.evaluation.metrics import ClassificationReport
from fedfer.stages.central import Prepared


def evaluate_prepared(prepared: Prepared, out: Path, checkpoint: Path | None = None) -> dict[str, ClassificationReport]:
    """Score v() (the central one, or `checkpoint`) and g()'s frame mean on the test actors, and g() on
    its still-image test set; write JSON, Markdown and confusion PNGs into `out` and print a table."""
    from fedfer.evaluation.metrics import (
        evaluate_predictions,
        markdown_table,
        plot_confusion,
    )
    from fedfer.evaluation.scoring import evaluate_central
    from fedfer.io import atomic_write_json, atomic_write_text
    from fedfer.model.checkpoint import load_head
    from fedfer.model.inference import predict_proba
    from fedfer.stages.sets import still_features

    classes = prepared.task.classes
    v, _ = load_head(checkpoint or prepared.vfer, stage="vfer", backbone_id=prepared.backbone_id, classes=classes)
    test = prepared.sequences(prepared.split["test"])
    g = None  # the pixel teacher has no g() on features
    if prepared.ifer is not None:
        g, _ = load_head(prepared.ifer, stage="ifer", backbone_id=prepared.backbone_id, classes=classes)
    reports = evaluate_central(v, g, test.inputs, test.labels, classes)
    if g is not None and prepared.teacher.name == "affectnet":
        stills = still_features(prepared.world, prepared.workspace, prepared.features, prepared.task)["test"]
        reports["ifer_images"] = evaluate_predictions(
            stills.labels, predict_proba(g, stills.inputs).argmax(axis=1), classes
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "central_eval.json", {name: r.to_dict() for name, r in reports.items()})
    titles = {
        "vfer": "v() on test actors",
        "ifer_frame_mean": "g() frame mean on test actors",
        "ifer_images": "g() on still-image test set",
    }
    text = ["# Central models", ""]
    for name, r in reports.items():
        text += [f"## {titles[name]}", "", markdown_table({name: r}), ""]
        plot_confusion(r.confusion, classes, out / f"confusion_{name}.png", title=titles[name])
    atomic_write_text(out / "central_eval.md", "\n".join(text))
    print(f"{'model':<34}{'macro F1':>9}{'micro F1':>9}{'UAR':>7}{'WAR':>7}{'n':>7}")
    for name, r in reports.items():
        print(
            f"{titles[name]:<34}{100 * r.macro_f1:9.1f}{100 * r.micro_f1:9.1f}"
            f"{100 * r.uar:7.1f}{100 * r.war:7.1f}{sum(r.support):7d}"
        )
    print(f"written: {out}")
    return reports
