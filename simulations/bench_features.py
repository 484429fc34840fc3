"""Throughput of the feature path on this machine: f() at three crop sizes, face detection, end to end.

f() runs fp32 with channels_last under torch.inference_mode on `--threads` threads, on real face crops
of the CREMA-D samples (the offline weights; random weights would give subnormal activations and
erratic timings). Prints a Markdown table and writes the figures as JSON to --out.

    python simulations/bench_features.py --out results/bench_features.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fedfer.config import FeatureConfig
from fedfer.data.backbone import load_frame_encoder
from fedfer.data.extract import extract_video_features
from fedfer.data.faces import CropSettings, open_detector, resolve_detector, track_faces
from fedfer.data.video import read_video
from fedfer.io import atomic_write_json

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d-samples"


def timed_rate(fn, items_per_call: int, min_seconds: float, min_calls: int) -> dict[str, float]:
    """Items per second of `fn()` after one warm-up call: the median call (robust to other jobs on
    shared cores) and the fastest one, over at least `min_calls` calls and `min_seconds`."""
    fn()
    times: list[float] = []
    while len(times) < min_calls or sum(times) < min_seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": items_per_call / statistics.median(times), "best": items_per_call / min(times)}


def bench_encoder(frames: np.ndarray, sizes: tuple[int, ...], batch: int, seconds: float) -> list[dict]:
    backbone = load_frame_encoder("offline")
    rows = []
    with open_detector(resolve_detector("mediapipe")) as detector:
        for size in sizes:
            crops, _ = track_faces(iter(frames), detector, CropSettings(image_size=size))  # (T, S, S, 3)
            pool = np.concatenate([crops] * (batch // len(crops) + 1))[:batch]
            batched = timed_rate(lambda pool=pool: backbone.encode(pool, batch), batch, seconds, 3)
            single = timed_rate(lambda pool=pool: backbone.encode(pool[:1], 1), 1, seconds, 10)
            rows.append({"image_size": size, "batch": batch, "fps_batch": batched, "fps_single": single})
    return rows


def bench_detection(frames: np.ndarray, seconds: float) -> dict:
    """Frames per second of each detector on the full-size frames (one process)."""
    rates = {}
    for kind, subset in (("mediapipe", frames), ("haar", frames[::8])):
        with open_detector(resolve_detector(kind)) as detector:
            rates[kind] = timed_rate(
                lambda subset=subset: [detector.detect(f) for f in subset], len(subset), seconds, 3
            )
    return {"frame_shape": list(frames.shape[1:]), "fps_mediapipe": rates["mediapipe"], "fps_haar": rates["haar"]}


def bench_end_to_end(videos: list[Path], copies: int, workers: int) -> dict:
    """A cold `extract_video_features` run over `copies` renamed links to each sample (backbone load,
    worker start-up, decode, detect, f(), atomic writes), so start-up is amortised as in a corpus run."""
    with tempfile.TemporaryDirectory() as tmp:
        links = []
        for k in range(copies):
            for video in videos:
                links.append(Path(tmp) / "videos" / f"copy{k}_{video.name}")
                links[-1].parent.mkdir(exist_ok=True)
                links[-1].symlink_to(video)
        start = time.perf_counter()
        store = extract_video_features(links, Path(tmp) / "cache", FeatureConfig(workers=workers), progress=False)
        seconds = time.perf_counter() - start
        metas = [store.meta(c) for c in store.clip_ids()]
    frames = sum(m["frames"] for m in metas)
    rates = {m["clip_id"]: m["detection_rate"] for m in metas if m["clip_id"].startswith("copy0_")}
    return {
        "clips": len(links),
        "frames": frames,
        "seconds": seconds,
        "clips_per_s": len(links) / seconds,
        "frames_per_s": frames / seconds,
        "workers": workers,
        "detection_rate": rates,
    }


def fmt(rate: dict[str, float]) -> str:
    return f"{rate['median']:.1f} ({rate['best']:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_features.json"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads for f() (default 2)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timing window per figure")
    parser.add_argument("--workers", type=int, default=2, help="decode/detect processes in the end-to-end run")
    parser.add_argument("--copies", type=int, default=3, help="times each sample is processed in the end-to-end run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    videos = sorted(SAMPLES.glob("*.flv"))
    if not videos:
        raise SystemExit(f"no CREMA-D samples found in {SAMPLES}")
    frames = np.concatenate([read_video(v).frames for v in videos])  # (T, 360, 480, 3) uint8
    encoder = bench_encoder(frames[::4], (224, 160, 112), args.batch, args.seconds)
    detection = bench_detection(frames, args.seconds)
    end_to_end = bench_end_to_end(videos, args.copies, args.workers)

    print(
        f"\nf() = MobileNetV2 features + pooling, fp32, channels_last, {args.threads} threads "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)\n"
    )
    print("frames/s: median call (fastest call)\n")
    print(f"| crop | f() batch {args.batch} | f() batch 1 |")
    print("|---|---|---|")
    for r in encoder:
        print(f"| {r['image_size']}×{r['image_size']} | {fmt(r['fps_batch'])} | {fmt(r['fps_single'])} |")
    print(
        f"\n| face detection on {detection['frame_shape'][1]}×{detection['frame_shape'][0]} frames, "
        "1 process | frames/s |"
    )
    print("|---|---|")
    print(f"| MediaPipe BlazeFace short-range | {fmt(detection['fps_mediapipe'])} |")
    print(f"| OpenCV Haar cascade (fallback) | {fmt(detection['fps_haar'])} |")
    e = end_to_end
    print(
        f"\nend to end (cold, {e['workers']} workers, 224×224): {e['clips']} clips, "
        f"{e['frames']} frames in {e['seconds']:.1f} s = "
        f"{e['clips_per_s']:.2f} clips/s, {e['frames_per_s']:.1f} frames/s; "
        f"detection rate per clip {e['detection_rate']}"
    )

    record = {
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "encoder": encoder,
        "detection": detection,
        "end_to_end": end_to_end,
    }
    atomic_write_json(args.out, record)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
