"""What a study stamps its docs tables with, and the form it writes them in.

A study passes its settings to `fedfer.evaluation.stamp.stamp` through `published`, so the line under
each docs table says which world, features and personalization produced it; every study names the
same setting the same way ("world seed", "image size", "P"...), whichever of them it reports.
"""

from __future__ import annotations

from typing import Any

from fedfer.config import SYNTHETIC_PRESETS
from fedfer.evaluation.stamp import stamp
from fedfer.runs.options import RunOptions
from fedfer.stages.teacher import default_teacher


def known_settings(options: RunOptions) -> dict[str, Any]:
    """Every setting a study's stamp may name, read from its RunOptions."""
    p = options.federation.personalize
    # Without --teacher a run gets the default of its world: synthetic worlds and --affectnet bring stills.
    stills = options.world in SYNTHETIC_PRESETS or options.affectnet is not None
    return {
        "world": options.world,
        "world seed": options.world_seed,
        "image size": options.features.image_size,
        "batchnorm": options.vfer.batchnorm,
        "teacher": options.teacher or default_teacher(stills).name,
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


def published(tables: dict[str, dict], settings: dict[str, Any], synthetic_world: bool = True) -> dict:
    """A docs results file (`fedfer.publish.result_tables`): `tables` (name → {"columns", "rows"[,
    "stamp"]}) under a stamp of now and `settings`; `synthetic_world` False for a figure that used none."""
    the_stamp = stamp(**settings)
    if not synthetic_world:
        the_stamp["world_version"] = None
    return {"stamp": the_stamp, "tables": tables}
