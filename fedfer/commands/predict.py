"""`fedfer predict`: a trained v() on video files, folders of videos or a camera, one LSTM step per frame.

Writes frames.csv, clips.csv and predictions.json (and, with --annotate, an annotated video per
source) into --out; see `fedfer.predict.outputs`.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from fedfer.config import FeatureConfig, PredictConfig

if TYPE_CHECKING:
    from fedfer.predict.choice import ModelChoice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = PredictConfig()
    parser.add_argument("inputs", nargs="*", type=Path, help="video files or folders (searched recursively)")
    parser.add_argument("--camera", type=int, metavar="INDEX", help="predict on camera INDEX (cv2.VideoCapture)")
    add_model_arguments(parser)
    parser.add_argument(
        "--exported", type=Path, help="a folder written by `fedfer export`: run it in ONNX Runtime (the fastest path)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results") / "predict", help="output folder (default: results/predict)"
    )
    parser.add_argument("--annotate", action="store_true", help="also write <clip>.annotated.mp4 per source")
    parser.add_argument("--threads", type=int, default=d.threads, help=f"compute threads (default {d.threads})")
    parser.add_argument("--max-frames", type=int, help="stop each source after N frames (a camera: else Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    from fedfer.predict.runner import SourceSpec, predict_sources
    from fedfer.predict.sources import camera_source, video_paths, video_source

    if bool(args.inputs) == (args.camera is not None):
        raise ValueError("give video files/folders or --camera INDEX (one of the two)")
    config = PredictConfig(threads=args.threads, max_frames=args.max_frames, annotate=args.annotate)
    # Inputs are checked (a camera opened) before the model loads, so a bad input fails at once.
    camera = camera_source(args.camera, config.max_frames, config.camera_fps) if args.camera is not None else None
    paths = video_paths(args.inputs) if camera is None else []
    engine, model = _engine(args, config.threads)
    if camera is not None:
        sources = [SourceSpec(camera.name, camera.name, lambda: camera, live=True)]
    else:  # files keep the frames the model was trained on: its feature settings' frame step
        step = engine.faces.frame_step
        sources = [SourceSpec(p.stem, str(p), partial(video_source, p, step, config.max_frames)) for p in paths]
    results = predict_sources(sources, engine, config, args.out, model)
    for result in results:
        s = result.summary()
        outcome = f"{s['label']} {max(s['probabilities']):.2f}" if s["probabilities"] else s["reason"]
        print(f"{s['clip']}: {s['frames']} frames, {s['frames_per_s']:.1f} frames/s, {outcome}")
    print(f"model: {model}\nwrote {args.out}")
    return 0


def _engine(args: argparse.Namespace, threads: int):
    """The engine and a description of its model: ONNX Runtime for --exported, else PyTorch."""
    if args.exported is not None:
        if args.run or args.checkpoint:
            raise ValueError("--exported runs an exported model: leave out --run/--checkpoint")
        from fedfer.predict.exported import OnnxEngine

        engine = OnnxEngine(args.exported, threads)
        return engine, f"{engine.card['model']} (ONNX export {args.exported})"
    from fedfer.predict.choice import load_model
    from fedfer.predict.pipeline import TorchEngine

    choice = model_choice_from_args(args)
    return TorchEngine(load_model(choice), threads), choice.description


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which trained v() a verb uses (`fedfer predict`, `fedfer export`) and, for a bare checkpoint, its features."""
    parser.add_argument(
        "--run", type=Path, help="a run folder (results/<run>): its central v() after the last round by default"
    )
    parser.add_argument("--subject", help="with --run: this subject's personalized v() instead of the central one")
    parser.add_argument("--checkpoint", type=Path, help="any v() checkpoint (instead of --run)")
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"with --checkpoint: face crop side its v() was trained with (default {FeatureConfig.image_size}; "
        "--run uses the run's)",
    )
    parser.add_argument("--weights", help="with --checkpoint: f() weights its v() was trained with (default offline)")
    parser.add_argument(
        "--frame-step", type=int, help="with --checkpoint: keep every n-th frame, as its v() was trained (default 1)"
    )


def model_choice_from_args(args: argparse.Namespace) -> ModelChoice:
    """The `ModelChoice` the model flags name (imports the predict package, and so torch, only when called)."""
    from fedfer.predict.choice import choose_model

    return choose_model(
        run=args.run,
        subject=args.subject,
        checkpoint=args.checkpoint,
        ifer_checkpoint=getattr(args, "ifer_checkpoint", None),  # `fedfer export` only: predict needs no g()
        feature_overrides={"image_size": args.image_size, "weights": args.weights, "frame_step": args.frame_step},
    )
