"""The settings a study's published tables are stamped with, named as the docs print them.

A study passes them to `fedfer.evaluation.stamp.stamp`, so the line under each docs table says which
world, features and personalization produced it; every study names the same setting the same way
("world seed", "image size", "P"...), whichever of them it reports.
"""

from __future__ import annotations

from typing import Any

from fedfer.config import SYNTHETIC_PRESETS
from fedfer.runs.options import RunOptions


def known_settings(options: RunOptions) -> dict[str, Any]:
    """Every setting a study's stamp may name, read from its RunOptions."""
    p = options.federation.personalize
    # The teacher a run without --teacher gets (`fedfer.stages.teacher.choose_teacher`): synthetic
    # worlds and --affectnet bring AffectNet-layout stills, other worlds train g() on video frames.
    stills = options.world in SYNTHETIC_PRESETS or options.affectnet is not None
    return {
        "world": options.world,
        "world seed": options.world_seed,
        "image size": options.features.image_size,
        "batchnorm": options.vfer.batchnorm,
        "teacher": options.teacher or ("affectnet" if stills else "crema-frames"),
        "seed": options.task.seed,
        "P": p.max_per_class,
        "threshold": p.p_threshold,
        "rounds": options.federation.num_server_rounds,
    }


def settings_of(options: RunOptions, *keys: str, **more: Any) -> dict[str, Any]:
    """The settings `keys` of `options` (see `known_settings`), in that order, then `more`: what the
    study itself knows (clients scored, seeds, δ...), which also overrides a known one of the same name."""
    known = known_settings(options)
    return {**{key: known[key] for key in keys}, **more}
