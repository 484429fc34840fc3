"""Targets scored on a rendered world: g() and the central v()s trained and tested as the paper did.

A candidate world (knob values) is rendered into the workspace under a name of its own, its
features extracted and cached like any world's, and the central stage trains g() (4 and 6 classes)
and each setting's central v(); only "Before" models are trained, nothing adapts. With no knob
changed the world is the frozen preset itself, under the name `fedfer run` uses, so the evaluation
that follows reuses these renders, features and central models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from fedfer.calibration.ideal import per_class_scores
from fedfer.calibration.knobs import apply
from fedfer.data.backbone import load_frame_encoder
from fedfer.data.datasets import Task
from fedfer.io import digest
from fedfer.model.checkpoint import load_head
from fedfer.model.inference import predict_proba
from fedfer.model.training import LabelledSet
from fedfer.paper.corpora import MSP_IMPROV_CORPUS, Corpus, load_msp_improv_corpus
from fedfer.runs.options import RunOptions
from fedfer.stages.central import Prepared, model_path, prepare_stages, train_central
from fedfer.stages.sets import still_features
from fedfer.stages.workspace import World
from fedfer.synth import CORPORA, render_world
from fedfer.synth.presets import WORLD_VERSION, get_preset


@dataclass(frozen=True)
class RenderedWorld:
    world: World
    msp_improv: Path


def world_name(preset: str, seed: int, values: Mapping[str, float], corpora: tuple[str, ...] = CORPORA) -> str:
    """The frozen world's id (as `fedfer run` names it) when no knob changes, else one per candidate,
    named after the knobs that reach the rendered `corpora` (a knob of another corpus changes nothing
    on disk, so it does not make the render a new one)."""
    base = f"{preset}-s{seed}-v{WORLD_VERSION}"
    relevant = {k: v for k, v in values.items() if k.split(".")[0] not in CORPORA or k.split(".")[0] in corpora}
    return base if not relevant else f"{base}-c{digest(dict(sorted(relevant.items())), 8)}"


def render_candidate(
    values: Mapping[str, float],
    preset: str,
    seed: int,
    workspace: Path,
    corpora: tuple[str, ...] = CORPORA,
    progress: bool = True,
) -> RenderedWorld:
    """Render the candidate's corpora (resuming; skipped when already there)."""
    world_id = world_name(preset, seed, values, corpora)
    root = workspace / "worlds" / world_id
    render_world(apply(get_preset(preset), values), seed, root, corpora=corpora, progress=progress)
    return RenderedWorld(World(world_id, root / "crema_d", root / "affectnet"), root / MSP_IMPROV_CORPUS)


def scores_of(model, data: LabelledSet, classes: tuple[str, ...]) -> dict[str, dict[str, float]]:
    predicted = predict_proba(model, data.inputs).argmax(axis=1)
    return per_class_scores(np.asarray(data.labels), predicted, classes)


def central_scores(rendered: RenderedWorld, options: RunOptions, split_seed: int, progress: bool = True) -> dict:
    """{target key: per-class scores} for Table 1 (4, 6 classes), Table 2, seed 002, Tables 3-5."""
    stills, teachers = stills_scores(rendered.world, options, split_seed, progress)
    return stills | video_scores(rendered, options, split_seed, teachers, progress=progress)


CREMA_TABLES = ("table2", "seed002")  # the central v()s trained and tested on the CREMA-D-shaped corpus
ALL_TABLES = (*CREMA_TABLES, "table3", "table4", "table5")


def video_scores(
    rendered: RenderedWorld,
    options: RunOptions,
    split_seed: int,
    teachers: Mapping[int, Path],
    tables: tuple[str, ...] = ALL_TABLES,
    progress: bool = True,
) -> dict:
    """{target key: per-class scores} of the central v()s: Table 2 (audio-visual labels), seed 002
    (face labels), Table 3 (MSP-IMPROV within), Table 4 (MSP-IMPROV → CREMA-D), Table 5 (CREMA-D →
    MSP-IMPROV). `teachers` maps 4 and 6 classes to a trained g(), which the central stage needs
    beside v() but which plays no part in these scores."""
    workspace, features = options.workspace, options.features

    def prepared(num_classes: int, label_mode: str = "av") -> Prepared:
        task = Task(num_classes=num_classes, label_mode=label_mode, seed=split_seed)
        return prepare_stages(
            rendered.world, workspace, task, features, options.ifer, options.vfer, str(teachers[num_classes]), progress
        )

    out: dict[str, dict] = {}
    for key, p in (("table2", prepared(6)), ("seed002", prepared(6, "face"))):
        v = load_head(p.vfer, stage="vfer", classes=p.task.classes)[0]
        out[key] = scores_of(v, p.sequences(p.split["test"]), p.task.classes)
    if tables == CREMA_TABLES:
        return out
    four = prepared(4)
    msp = load_msp_improv_corpus(rendered.msp_improv, rendered.world, workspace, features, split_seed)
    v_msp = msp_central_v(msp, four, options, progress)
    out["table3"] = scores_of(v_msp, msp.sequences(msp.split["test"]), four.task.classes)
    out["table4"] = scores_of(v_msp, four.sequences(four.split["test"]), four.task.classes)
    v_crema = load_head(four.vfer, stage="vfer", classes=four.task.classes)[0]
    out["table5"] = scores_of(v_crema, msp.sequences(sorted({c.actor for c in msp.clips})), four.task.classes)
    return out


def flat_scores(scores: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
    """{`<table>_<class>_<precision|recall|f1>`: percent} from {table: {class: {metric: percent}}}."""
    return {
        f"{t}_{c}_{m}": float(v) for t, by_class in scores.items() for c, by in by_class.items() for m, v in by.items()
    }


def stills_scores(
    world: World, options: RunOptions, split_seed: int, progress: bool = True
) -> tuple[dict, dict[int, Path]]:
    """Table 1 for a world's stills alone: g() trained for 4 and 6 classes (saved where the central
    stage looks for it) and scored on the stills' test set; also returns the two g() checkpoints."""
    out, paths = {}, {}
    backbone = load_frame_encoder(options.features.weights).backbone_id
    for k in (6, 4):
        task = Task(num_classes=k, seed=split_seed)
        config = replace(options.ifer, num_classes=k, seed=split_seed)
        sets = still_features(world, options.workspace, options.features, task, progress)
        paths[k] = model_path(options.workspace, world, options.features, "ifer", config, task)
        train_central("ifer", lambda sets=sets: sets, config, paths[k], backbone, task.classes, progress)
        g = load_head(paths[k], stage="ifer", classes=task.classes)[0]
        out[f"table1-{k}"] = scores_of(g, sets["test"], task.classes)
    return out, paths


def msp_central_v(msp: Corpus, four: Prepared, options: RunOptions, progress: bool):
    """The central v() of the MSP-IMPROV-shaped corpus (its 6 train / 2 dev actors), trained once."""
    vfer = replace(options.vfer, num_classes=4, seed=four.task.seed)
    path = model_path(
        options.workspace, four.world, options.features, f"vfer-{MSP_IMPROV_CORPUS}-plurality", vfer, four.task
    )
    train_central(
        "vfer",
        lambda: {name: msp.sequences(msp.split[name]) for name in ("train", "dev")},
        vfer,
        path,
        four.backbone_id,
        four.task.classes,
        progress,
    )
    return load_head(path, stage="vfer", classes=four.task.classes)[0]


def neutral_confidence(rendered: RenderedWorld, options: RunOptions, split_seed: int) -> dict[str, list[float]]:
    """The learned 6-class g()'s frame-mean P(NEU) on the test actors' clips, split by their label
    (NEU or another class): how Neutral looks to the teacher a subject would have."""
    _, teachers = stills_scores(rendered.world, options, split_seed, progress=False)
    task = Task(num_classes=6, seed=split_seed)
    p = prepare_stages(
        rendered.world,
        options.workspace,
        task,
        options.features,
        options.ifer,
        options.vfer,
        str(teachers[6]),
        progress=False,
    )
    g = load_head(teachers[6], stage="ifer", classes=task.classes)[0]
    test = p.sequences(p.split["test"])
    neu = task.classes.index("NEU")
    p_neu = [float(predict_proba(g, np.asarray(clip, dtype=np.float32))[:, neu].mean()) for clip in test.inputs]
    labels = np.asarray(test.labels)
    return {
        "neutral": [x for x, y in zip(p_neu, labels) if y == neu],
        "other": [x for x, y in zip(p_neu, labels) if y != neu],
    }
