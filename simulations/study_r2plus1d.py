"""Seed 004's R(2+1)D baseline against fedfer's f()+v(): what it scores.

Trains the network centrally on a synthetic world's face clips, on the same actor splits (the split
files `fedfer train` saved in the workspace) and labels as the central v(), and scores both on the
test actors (macro F1 and accuracy, mean ± 95% CI over seeds). The f()+v() numbers are those of
`fedfer train --seed N` with its default settings (its cached heads, trained here where missing). Its
price (parameters, MACs, latency, memory, bytes per round) is simulations/bench_r2plus1d.py.

    python simulations/study_r2plus1d.py --workspace data --world-seed 200 --seeds 0 1 2 --frames 16 \\
        --size 32 --epochs 3 --batch-size 8 --threads 1 --out results/r2plus1d/accuracy.json

Beside `--out`, accuracy-published.json holds the table stamped for the docs (docs/results/r2plus1d-accuracy.json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from fedfer.data.datasets import Clip, Task
from fedfer.data.face_cubes import ClipSampling, FaceClips, extract_face_cubes
from fedfer.evaluation.metrics import evaluate_predictions
from fedfer.evaluation.stats import mean_ci
from fedfer.io import atomic_write_json
from fedfer.model.r2plus1d import R2Plus1DFER, SparseCentreLoss, load_kinetics_encoder
from fedfer.model.train_clips import ClipTrainConfig, fit_clips, predict_logits
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published
from fedfer.stages.workspace import actor_split, load_clips, prepare_world

NUM_CLASSES = 6
PAPER = ClipSampling()  # 16 frames of 112 x 112


# ------------------------------------------------------------------------------ accuracy


def fv_report(args: argparse.Namespace, seed: int) -> dict:
    """The central f()+v()'s test-actor scores for this world and seed, with `fedfer train`'s default
    settings: its cached heads (trained now where missing) scored as `fedfer train` scores them."""
    from fedfer.runs.options import RunOptions
    from fedfer.runs.study import run_stages
    from fedfer.stages.central_eval import evaluate_prepared

    options = RunOptions(
        world=args.world, world_seed=args.world_seed, workspace=args.workspace, task=Task(NUM_CLASSES, seed=seed)
    )
    prepared = run_stages(options)
    report = evaluate_prepared(prepared, prepared.vfer.with_name(f"{prepared.vfer.stem}-eval"))["vfer"]
    return {"macro_f1": report.macro_f1, "accuracy": report.accuracy, "uar": report.uar}


def labelled(clips: list[Clip], actors: list[str], cubes: dict[str, Path], size: int) -> FaceClips:
    """The face clips of `actors` that have a label, at `size` pixels."""
    chosen = [c for c in clips if c.actor in set(actors) and c.label is not None]
    return FaceClips.load([cubes[c.clip_id] for c in chosen], [c.label for c in chosen], size)


def accuracy(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    sampling = ClipSampling(args.frames, args.size)
    config = ClipTrainConfig(epochs=args.epochs, batch_size=args.batch_size)
    world = prepare_world(args.world, args.workspace, seed=args.world_seed, progress=False)
    clips = load_clips(world, Task(num_classes=NUM_CLASSES))  # the labels are the same for every seed
    start = time.perf_counter()
    cubes = extract_face_cubes(
        [c.path for c in clips], args.workspace / "face_cubes" / world.world_id, size=PAPER.size, workers=args.workers
    )
    result = {
        "world": world.world_id,
        "sampling": asdict(sampling),
        "config": asdict(config),
        "kinetics": str(args.kinetics) if args.kinetics else None,
        "threads": args.threads,
        "face_crops_seconds": time.perf_counter() - start,
        "seeds": [],
    }
    clips = [c for c in clips if c.clip_id in cubes]
    classes = Task(num_classes=NUM_CLASSES).classes
    for seed in args.seeds:
        split = actor_split(world, clips, args.workspace, seed)  # the file `fedfer train --seed` saved
        train, dev, test = (labelled(clips, split[name], cubes, sampling.size) for name in ("train", "dev", "test"))
        torch.manual_seed(seed)
        model, centre = R2Plus1DFER(NUM_CLASSES), SparseCentreLoss(NUM_CLASSES)
        if args.kinetics is not None:
            load_kinetics_encoder(model, args.kinetics)
        start = time.perf_counter()
        history = fit_clips(model, centre, train, dev, sampling, replace(config, seed=seed))
        train_seconds = time.perf_counter() - start
        predicted = predict_logits(model, test, sampling.frames, config.batch_size).argmax(axis=1)
        report = evaluate_predictions(test.labels, predicted, classes)
        row = {
            "seed": seed,
            "clips": {"train": len(train), "dev": len(dev), "test": len(test)},
            "r2plus1d": {"macro_f1": report.macro_f1, "accuracy": report.accuracy, "uar": report.uar},
            "r2plus1d_confusion": report.confusion,
            "fv": fv_report(args, seed),
            "train_seconds": train_seconds,
            "history": asdict(history),
        }
        result["seeds"].append(row)
        atomic_write_json(args.out, result)  # each seed's hours are kept should a later one fail
        print(json.dumps({k: row[k] for k in ("seed", "r2plus1d", "fv", "train_seconds")}), flush=True)
    return {**result, "load_average_end": os.getloadavg()}


MODELS = (("fv", "f()+v() (fedfer, central)"), ("r2plus1d", "R(2+1)D + attention (seed 004)"))


def accuracy_table(result: dict) -> dict:
    """The docs table `r2plus1d-accuracy`: each model's test-actor scores, mean ± 95% CI over seeds, and the
    seconds each seed's training took (f()+v(): read from `fedfer train`'s record, where it kept one)."""
    seeds = result["seeds"]
    columns = ["model, trained centrally", "macro F1", "accuracy (WAR)", "UAR", "per seed (macro F1)"]
    rows = []
    for key, name in MODELS:
        cells = [mean_ci([s[key][m] for s in seeds]).format() for m in ("macro_f1", "accuracy", "uar")]
        rows.append([name, *cells, ", ".join(f"{100 * s[key]['macro_f1']:.1f}" for s in seeds)])
    return {"columns": columns, "rows": rows}


def accuracy_markdown(result: dict) -> str:
    table = accuracy_table(result)
    minutes = [s["train_seconds"] / 60 for s in result["seeds"]]
    lines = [
        *markdown(table["columns"], table["rows"]),
        "",
        f"R(2+1)D training: {', '.join(f'{m:.0f}' for m in minutes)} min per seed on {result['threads']} threads; "
        f"face crops {result['face_crops_seconds'] / 60:.1f} min (once).",
    ]
    return "\n".join(lines) + "\n"


def published_accuracy(result: dict) -> dict:
    """The table stamped for docs/results/r2plus1d-accuracy.json, with what the training took."""
    config, sampling = result["config"], result["sampling"]
    minutes = [round(s["train_seconds"] / 60, 1) for s in result["seeds"]]
    settings = {
        "world": result["world"],
        "seeds": [s["seed"] for s in result["seeds"]],
        "clip": f"{sampling['frames']} frames of {sampling['size']}² px",
        "R(2+1)D": f"{config['epochs']} epochs, batch {config['batch_size']}, "
        f"{'Kinetics-400 weights' if result['kinetics'] else 'from scratch'}",
        "training minutes per seed": minutes,
        "threads": result["threads"],
    }
    return published({"accuracy": accuracy_table(result)}, settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=16, help="frames per clip trained on (paper: 16)")
    parser.add_argument("--size", type=int, default=32, help="crop side trained on (paper: 112)")
    parser.add_argument("--out", type=Path, default=Path("results/r2plus1d/accuracy.json"))
    parser.add_argument("--world", default="small", help="synthetic preset rendered in the workspace")
    parser.add_argument("--world-seed", type=int, default=0)
    parser.add_argument("--workspace", type=Path, default=Path("data"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="face-detection processes")
    parser.add_argument(
        "--kinetics", type=Path, help="torchvision's Kinetics-400 R(2+1)D-18 file (default: from scratch)"
    )
    parser.add_argument("--tables-from", type=Path, help="no training: the tables of this saved result (.json)")
    args = parser.parse_args(argv)
    result = json.loads(args.tables_from.read_text()) if args.tables_from else accuracy(args)
    atomic_write_json(args.out, result)
    atomic_write_json(args.out.with_name("accuracy-published.json"), published_accuracy(result))
    print(accuracy_markdown(result))
    print(json.dumps({"written": [str(args.out), str(args.out.with_name("accuracy-published.json"))]}))


if __name__ == "__main__":
    main()
