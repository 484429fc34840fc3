"""Targets scored on a planned world (no pixels): the crowd's label statistics and the ideal g().

Both are functions of knob values (`fedfer.calibration.knobs`) so that the search can evaluate
candidates in worker processes; each plans the world afresh for every seed and averages.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from fedfer.calibration.ideal import ideal_g, still_scores
from fedfer.calibration.knobs import apply
from fedfer.calibration.label_stats import VotedClip, label_statistics
from fedfer.synth.affectnet import plan_stills
from fedfer.synth.crema_d import CremaDClip, plan_corpus
from fedfer.synth.presets import WorldPreset, get_preset


def voted(clips: Sequence[CremaDClip]) -> list[VotedClip]:
    """The planned clips as the label statistics see them."""
    return [
        VotedClip(c.actor.actor_id, c.emotion, c.level, tuple(c.ratings["face"].counts), tuple(c.ratings["av"].counts))
        for c in clips
    ]


def candidate(values: Mapping[str, float], preset: str) -> WorldPreset:
    return apply(get_preset(preset), values)


def mean_of(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def planned_label_statistics(
    values: Mapping[str, float],
    base: Mapping[str, float] | None = None,
    preset: str = "full",
    seeds: Sequence[int] = (100,),
) -> dict:
    """CREMA-D label statistics of the candidate's planned CREMA-D-shaped corpus (`base` values
    with `values` over them), mean over `seeds`."""
    world = candidate({**(base or {}), **values}, preset)
    return mean_of([label_statistics(voted(plan_corpus(world.crema_d, world.raters, s))) for s in seeds])


def planned_still_scores(
    values: Mapping[str, float],
    base: Mapping[str, float] | None = None,
    preset: str = "full",
    seeds: Sequence[int] = (100,),
    n_train: int = 5000,
) -> dict:
    """The ideal g()'s precision, recall and F1 on the candidate's planned test stills, 4 and 6
    classes: keys `table1-<K>_<class>_<precision|recall|f1>`, mean over `seeds`. `n_train` training
    stills are planned for g()'s class weights (their labels' frequencies)."""
    world = candidate({**(base or {}), **values}, preset)
    stills = dataclasses.replace(world.affectnet, n_train=n_train)
    rows = []
    for seed in seeds:
        train, valid = plan_stills(stills, seed)
        row = {}
        for k in (4, 6):
            scores = still_scores(ideal_g(train, k, stills.annotator), valid)
            row |= {f"table1-{k}_{c}_{m}": v for c, by in scores.items() for m, v in by.items()}
        rows.append(row)
    return mean_of(rows)
