"""Calibrate the synthetic world to published inputs only, and report every target against its tolerance.

    python simulations/calibrate_world.py --out results/calibration                    # every stage
    python simulations/calibrate_world.py --out results/calibration --stages report    # the report alone

Stages, in order (each resumes from what the ones before wrote into --out):
  crowd     the video raters and actors' expressivity fitted to CREMA-D's label statistics
            (tests/data/crema-d) on the planned `full` corpus of world seed 100;
  stills    the stills' annotator and pictured expressions fitted to Table 1 through the ideal g(),
            offset by the gap to a g() learned on rendered stills, twice;
  resting   the share of emotional resting faces chosen on rendered worlds by the central v()'s
            Neutral precision and recall (Tables 2 and 4, Before);
  rendered  the calibration seeds 100-104 rendered, g() and the central v()s trained, Table 1 and
            the "Before" columns scored;
  recheck   the frozen world (the presets' defaults) on the evaluation seeds 200-209: label
            statistics, the ideal g(), and the central models on split 0 (the effect study trains
            splits 1 and 2 of Table 2 itself);
  report    calibration.md / calibration.json / calibration.png from the files above.
Times on 2 cores: crowd about 40 min, stills 25, resting 45, rendered 60, recheck 3 h (it renders
and trains the ten evaluation worlds) or 4 min for its planned part alone (`--rendered-evaluation-seeds`
with no seed), report 3.

Nothing here imports personalization, pseudo-labelling or federation (tests/test_calibration.py
checks the import graph), and the report lists the modules that were loaded: no adaptation result
can be computed while the world is calibrated.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from fedfer.calibration import calibration_report as report
from fedfer.calibration.fitting import (
    CROWD_KNOBS,
    RESTING_KNOB,
    RESTING_SCAN,
    STILLS_KNOBS,
    UNCALIBRATED,
    resting_distance,
    stills_target_keys,
    table1_distance,
    tie_stills,
)
from fedfer.calibration.knobs import Knob, read
from fedfer.calibration.label_stats import label_statistics, read_voted_clips
from fedfer.calibration.planned import planned_label_statistics, planned_still_scores
from fedfer.calibration.rendered import (
    CREMA_TABLES,
    central_scores,
    flat_scores,
    neutral_confidence,
    render_candidate,
    stills_scores,
    video_scores,
    world_name,
)
from fedfer.calibration.search import Evaluations, fit
from fedfer.calibration.targets import label_tolerance
from fedfer.io import atomic_write_json
from fedfer.runs.options import RunOptions
from fedfer.synth.presets import get_preset

REAL_LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d"
CALIBRATION_SEEDS = (100, 101, 102, 103, 104)
EVALUATION_SEEDS = tuple(range(200, 210))
EVALUATION_SPLITS = (0,)  # the effect study trains splits 1 and 2 of the teacher and Table 2 itself
STAGES = ("crowd", "stills", "resting", "rendered", "recheck", "report")
log = logging.getLogger("calibrate_world")


def load(out: Path, name: str) -> dict:
    path = out / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run --stages {name} first")
    return json.loads(path.read_text())


def fitted_values(out: Path, upto: str) -> dict[str, float]:
    """The uncalibrated world's knob values with every stage's result before `upto` over them."""
    values = dict(UNCALIBRATED)
    for stage in STAGES[: STAGES.index(upto)]:
        if stage in ("crowd", "stills", "resting"):
            values |= load(out, stage)["values"]
    return tie_stills(values)


def crowd_stage(out: Path, pool) -> dict:
    real = label_statistics(read_voted_clips(REAL_LABELS))
    start = fitted_values(out, "crowd")
    evaluate = functools.partial(planned_label_statistics, base=start, preset="full", seeds=CALIBRATION_SEEDS[:1])
    result = fit(
        evaluate,
        CROWD_KNOBS,
        start,
        real,
        {k: label_tolerance(k) for k in real},
        Evaluations(out / "candidates.jsonl", "crowd"),
        iterations=10,
        pool=pool,
    )
    return {"values": result.values, "cost": result.cost, "history": result.history, "sensitivity": result.jacobian}


def stills_stage(out: Path, pool, options: RunOptions, rounds: int = 2) -> dict:
    """Fit the ideal g() to Table 1 plus the last measured gap to a learned g(), `rounds` times; keep
    the round whose learned g() is nearest Table 1 (the gap moves between candidates, so the last
    round is not always the best)."""
    targets = stills_target_keys()
    tolerances = dict.fromkeys(targets, 5.0)
    base = fitted_values(out, "stills")
    values = {k.path: base[k.path] for k in STILLS_KNOBS}
    offset = dict.fromkeys(targets, 0.0)
    history = []
    for r in range(rounds):
        evaluate = functools.partial(planned_still_scores, base=base, preset="full", seeds=CALIBRATION_SEEDS[:1])
        shifted = {k: targets[k] + offset[k] for k in targets}
        result = fit(
            evaluate,
            STILLS_KNOBS,
            values,
            shifted,
            tolerances,
            Evaluations(out / "candidates.jsonl", f"stills-{r}"),
            pool=pool,
        )
        values = result.values
        world = render_candidate(
            changed({**base, **values}), "small", CALIBRATION_SEEDS[0], options.workspace, ("affectnet",)
        )
        scores, teachers = stills_scores(world.world, options, split_seed=0)
        learned = flat_scores(scores)
        offset = {k: result.statistics[k] - learned[k] for k in targets}
        history.append(
            {
                "round": r,
                "values": values,
                "cost": result.cost,
                "ideal": result.statistics,
                "learned": learned,
                "learned_distance": table1_distance(learned),
                "gap": offset,
                "teachers": {str(k): str(p) for k, p in teachers.items()},
                "sensitivity": result.jacobian,
            }
        )
        log.info(
            "stills round %d: ideal cost %.1f, learned distance %.1f",
            r + 1,
            result.cost,
            history[-1]["learned_distance"],
        )
    return chosen_round(history)


def chosen_round(history: list[dict]) -> dict:
    """The stills stage's result: the round whose learned g() is nearest Table 1, with every round kept."""
    best = min(history, key=lambda h: h["learned_distance"])
    return {
        "values": best["values"],
        "chosen_round": best["round"],
        "rounds": history,
        "sensitivity": best["sensitivity"],
        "teachers": best["teachers"],  # that round's g(): the central stage of the resting scan needs one
    }


def changed(values: dict[str, float]) -> dict[str, float]:
    """The knobs whose value differs from the presets' defaults (none once the world is frozen)."""
    current = read(get_preset("small"), [Knob(path, 0, 0, "") for path in values])
    return {k: v for k, v in values.items() if abs(v - current[k]) > 5e-3 * max(abs(v), 1e-3)}  # 3 digits written


def resting_stage(out: Path, options: RunOptions, splits: tuple[int, ...] = (0, 1, 2)) -> dict:
    """Scan the resting-face share on world seed 100, scoring the CREMA-D central v()s (Table 2, seed
    002) over several splits: one split's v() moves by more than the shares do."""
    base = fitted_values(out, "resting")
    teachers = {int(k): Path(p) for k, p in load(out, "stills")["teachers"].items()}
    scan = []
    for share in RESTING_SCAN:
        values = changed({**base, RESTING_KNOB: share})
        world = render_candidate(values, "small", CALIBRATION_SEEDS[0], options.workspace, ("crema_d", "msp_improv"))
        per_split = [flat_scores(video_scores(world, options, split, teachers, CREMA_TABLES)) for split in splits]
        scores = {k: float(np.mean([s[k] for s in per_split])) for k in per_split[0]}
        scan.append({"share": share, "scores": scores, "per_split": per_split, "distance": resting_distance(scores)})
        log.info("resting share %.2f: distance %.2f", share, scan[-1]["distance"])
    best = min(scan, key=lambda row: row["distance"])
    return {"values": {RESTING_KNOB: best["share"]}, "scan": scan, "splits": list(splits)}


def rendered_stage(out: Path, options: RunOptions, seeds, splits=(0,)) -> dict:
    """The central models of each (world seed, split) scored; each row is kept under OUT/scored/ as it
    is computed (named after the world, so a row of other knob values is never reused) and a rerun
    computes only the rows it lacks."""
    values = changed(fitted_values(out, "rendered"))
    rows = []
    for seed in seeds:
        for split in splits:
            path = out / "scored" / f"{world_name('small', seed, values)}-split{split}.json"
            if path.is_file():
                rows.append(json.loads(path.read_text()))
                continue
            world = render_candidate(values, "small", seed, options.workspace)
            row = {
                "seed": seed,
                "split": split,
                "scores": flat_scores(central_scores(world, options, split)),
                "neutral_confidence": neutral_confidence(world, options, split),
            }
            atomic_write_json(path, row)
            log.info("world seed %d split %d scored", seed, split)
            rows.append(row)
    return {"values": values, "rows": rows}


def labels_of_seed(seed: int) -> dict[str, float]:
    return planned_label_statistics({}, preset="full", seeds=(seed,))


def stills_of_seed(seed: int) -> dict[str, float]:
    return planned_still_scores({}, preset="full", seeds=(seed,))


def recheck_stage(out: Path, options: RunOptions, pool, seeds=EVALUATION_SEEDS, rendered=EVALUATION_SEEDS) -> dict:
    """The frozen world (the presets' own defaults, no knob applied) on the evaluation seeds: the planned
    label statistics and ideal stills on `seeds`, the rendered central models on `rendered` (a subset)."""
    if changed(fitted_values(out, "recheck")):
        raise SystemExit(
            "the presets' defaults are not the fitted values yet: freeze the world (write the fitted values into the "
            "defaults of fedfer/synth/presets.py and fedfer/synth/actors.py, bump WORLD_VERSION) before the evaluation "
            "seeds are used"
        )
    labels = pool.map(labels_of_seed, seeds)
    stills = pool.map(stills_of_seed, seeds)
    central = rendered_stage(out, options, rendered, EVALUATION_SPLITS)["rows"] if rendered else []
    return {"seeds": list(seeds), "label_statistics": labels, "ideal_stills": stills, "central": central}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("results/calibration"), help="report folder")
    parser.add_argument("--workspace", type=Path, default=Path("data"), help="renders, features and models")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES, help="stages to run")
    parser.add_argument("--workers", type=int, default=2, help="processes that plan candidates in parallel")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(CALIBRATION_SEEDS), help="worlds the rendered stage checks"
    )
    parser.add_argument(
        "--evaluation-seeds",
        type=int,
        nargs="+",
        default=list(EVALUATION_SEEDS),
        help="unseen worlds the recheck stage plans (label statistics, ideal stills: seconds each)",
    )
    parser.add_argument(
        "--rendered-evaluation-seeds",
        type=int,
        nargs="*",
        help="those of them it also renders and trains on, split 0 (each about 20 minutes on 2 cores; "
        "default: all of --evaluation-seeds; none: the planned part alone)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    options = RunOptions(workspace=args.workspace)
    with get_context("fork").Pool(args.workers) as pool:
        for stage in STAGES:
            if stage not in args.stages:
                continue
            log.info("stage %s", stage)
            if stage == "crowd":
                result = crowd_stage(args.out, pool)
            elif stage == "stills":
                result = stills_stage(args.out, pool, options)
            elif stage == "resting":
                result = resting_stage(args.out, options)
            elif stage == "rendered":
                result = rendered_stage(args.out, options, tuple(args.seeds))
            elif stage == "recheck":
                rendered = (
                    args.evaluation_seeds if args.rendered_evaluation_seeds is None else args.rendered_evaluation_seeds
                )
                result = recheck_stage(args.out, options, pool, tuple(args.evaluation_seeds), tuple(rendered))
            else:
                report.write(args.out, REAL_LABELS, tuple(args.seeds), pool)
                continue
            atomic_write_json(args.out / f"{stage}.json", result)


if __name__ == "__main__":
    main()
