"""`fedfer features VIDEO_DIR --out CACHE_DIR`: crop faces and cache frozen f() features of every video."""

from __future__ import annotations

import argparse
import csv
import logging
from collections import Counter
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fedfer.config import FeatureConfig
    from fedfer.runs.options import add_engine_arguments

    d = FeatureConfig()
    parser.add_argument("video_dir", type=Path, help="folder searched recursively for videos (.flv, .mp4, .avi, ...)")
    parser.add_argument(
        "--out", type=Path, required=True, help="feature cache folder (one .npz per clip + summary.csv)"
    )
    parser.add_argument(
        "--image-size", type=int, default=d.image_size, help=f"face crop side in pixels (default {d.image_size})"
    )
    parser.add_argument(
        "--weights", default=d.weights, help="'offline' (default), 'imagenet', or a MobileNetV2 .pt/.pth state dict"
    )
    parser.add_argument(
        "--detector", choices=("mediapipe", "haar"), default=d.detector, help=f"face detector (default {d.detector})"
    )
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=d.min_confidence,
        help=f"minimum detection score (default {d.min_confidence})",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=d.margin,
        help=f"fraction of the face box added on each side (default {d.margin})",
    )
    parser.add_argument("--frame-step", type=int, default=d.frame_step, help="keep every n-th frame (default 1: all)")
    parser.add_argument(
        "--batch-size", type=int, default=d.batch_size, help=f"frames per f() pass (default {d.batch_size})"
    )
    parser.add_argument(
        "--workers", type=int, default=d.workers, help=f"decode/detect processes, 0 = in-process (default {d.workers})"
    )
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from fedfer.config import FeatureConfig
    from fedfer.data.datasets.crema_d import speaker_of
    from fedfer.data.extract import SUMMARY_FILE, extract_video_features
    from fedfer.data.video import find_videos

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = FeatureConfig(
        image_size=args.image_size,
        margin=args.margin,
        detector=args.detector,
        min_confidence=args.min_confidence,
        weights=args.weights,
        batch_size=args.batch_size,
        workers=args.workers,
        frame_step=args.frame_step,
        backend=args.backend,
        precision=args.precision,
        device=args.device,
    )
    videos = find_videos(args.video_dir)
    if not videos:
        print(f"no videos found under {args.video_dir}")
        return 1
    extract_video_features(videos, args.out, config, speaker_of=speaker_of)  # CREMA-D names, else the folder
    with open(args.out / SUMMARY_FILE, newline="") as fh:
        rows = list(csv.DictReader(fh))
    status = Counter(r["status"] for r in rows)
    cached = sum(r["reason"] == "cached" for r in rows)
    print(
        f"{len(rows)} clips: {status['ok']} ok ({cached} already cached), {status['skipped']} skipped; "
        f"summary in {args.out / SUMMARY_FILE}"
    )
    for reason, n in Counter(r["reason"] for r in rows if r["status"] == "skipped").most_common(5):
        print(f"  skipped {n}: {reason}")
    rates = [float(r["detection_rate"]) for r in rows if r["status"] == "ok"]
    if rates:
        print(f"face detection rate per clip: mean {sum(rates) / len(rates):.3f}, min {min(rates):.3f}")
    return 0
