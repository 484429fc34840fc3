"""Throughput of the feature path: every f() engine side by side, then each stage and the whole pipeline.

1. f() engines (needs no face detector, so it runs on a GPU machine without MediaPipe): eager PyTorch
   float32 and bfloat16, ONNX Runtime and OpenVINO float32 (when installed) on the CPU, or PyTorch
   float32/bfloat16 with `--device cuda`; on centre squares of the real CREMA-D sample frames resized to
   each crop size (the offline weights: random weights give subnormal activations and erratic timings).
   Each row: frames/s, ratio to PyTorch float32 at the pipeline's old batch of 8, the largest absolute
   difference of its features from PyTorch float32 on the CPU, and whether that difference is within
   the float16 storage step (then the engine shares the float32 cache fingerprint).
2. Stages (CPU, needs MediaPipe): decoding, face detection + crop, and `extract_video_features` end to
   end, cold (backbone load, workers, decode, detect, f(), atomic writes), once with the old path
   (PyTorch float32, batch 8) and once with the default engine, in the same run.

    python simulations/bench_features.py --out results/bench_features.json
    python simulations/bench_features.py --device cuda --stages none   # a GPU machine
"""

from __future__ import annotations

import importlib.util
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from study_args import study_parser

from fedfer.config import FeatureConfig
from fedfer.data.backbone import Backbone, load_frame_encoder
from fedfer.data.runtimes import storage_step
from fedfer.data.video import read_video
from fedfer.io import atomic_write_json

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d-samples"
OLD_PATH = {"backend": "torch", "precision": "fp32", "batch_size": 8}  # the pipeline before engines were chosen


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


def centre_crops(frames: np.ndarray, size: int, count: int) -> np.ndarray:
    """(count, size, size, 3) uint8: centre squares of `frames` resized as face crops are, repeated to `count`."""
    height, width = frames.shape[1:3]
    left = (width - height) // 2
    squares = [cv2.resize(f[:, left : left + height], (size, size), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack([squares[i % len(squares)] for i in range(count)])


def engines(device: str) -> list[tuple[str, str]]:
    """(backend, precision) pairs to time on `device`, the PyTorch float32 reference first."""
    if device == "cuda":
        return [("torch", "fp32"), ("torch", "bf16")]
    found = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "fp32")]
    return found + ([("openvino", "fp32")] if importlib.util.find_spec("openvino") else [])


def bench_engines(
    backbone: Backbone, frames: np.ndarray, device: str, sizes: list[int], batches: list[int], seconds: float
) -> list[dict]:
    rows = []
    for size in sizes:
        crops = centre_crops(frames, size, max(batches))
        reference = backbone.encode(crops[:32], 8).astype(np.float32)  # PyTorch float32 on the CPU, (32, 1280)
        step = storage_step(reference)
        base = None
        for backend, precision in engines(device):
            engine = backbone.on(backend, precision, device)
            diff = float(np.abs(engine.encode(crops[:32], 8).astype(np.float32) - reference).max())
            for batch in batches:
                rate = timed_rate(lambda e=engine, x=crops[:batch]: e.encode(x, len(x)), batch, seconds, 3)
                base = base or rate["median"]
                rows.append(
                    {
                        "image_size": size,
                        "engine": engine.runtime.name,
                        "batch": batch,
                        "fps": rate,
                        "ratio": rate["median"] / base,
                        "max_abs_diff": diff,
                        "storage_step": step,
                        "shares_fp32_fingerprint": diff <= step,
                    }
                )
                print(f"  {size} px {engine.runtime.name} batch {batch}: {fmt(rate)} frames/s", flush=True)
    return rows


def bench_stages(videos: list[Path], frames: np.ndarray, seconds: float) -> dict:
    """Decode and detect + crop rates in this one process (the pipeline runs them in workers)."""
    from fedfer.data.faces import CropSettings, open_detector, resolve_detector, track_faces

    decode = timed_rate(lambda: [read_video(v) for v in videos], len(frames), seconds, 2)
    with open_detector(resolve_detector("mediapipe")) as detector:
        detect = timed_rate(
            lambda: track_faces(iter(frames), detector, CropSettings(image_size=224)), len(frames), seconds, 2
        )
    return {"fps_decode": decode, "fps_detect_crop": detect, "frame_shape": list(frames.shape[1:])}


def bench_end_to_end(videos: list[Path], copies: int, config: FeatureConfig) -> dict:
    """A cold `extract_video_features` run over `copies` renamed links to each sample (backbone load,
    worker start-up, decode, detect, f(), atomic writes), so start-up is amortised as in a corpus run;
    steady state is the rate between the first and the last clip written."""
    from fedfer.data.extract import extract_video_features

    with tempfile.TemporaryDirectory() as tmp:
        links = []
        for k in range(copies):
            for video in videos:
                links.append(Path(tmp) / "videos" / f"copy{k}_{video.name}")
                links[-1].parent.mkdir(exist_ok=True)
                links[-1].symlink_to(video)
        start = time.perf_counter()
        store = extract_video_features(links, Path(tmp) / "cache", config, progress=False)
        seconds = time.perf_counter() - start
        metas = [store.meta(c) for c in store.clip_ids()]
        written = sorted((store.path(c).stat().st_mtime, store.meta(c)["frames"]) for c in store.clip_ids())
    frames = sum(m["frames"] for m in metas)
    steady_frames = sum(n for _, n in written[1:])
    steady_seconds = written[-1][0] - written[0][0]
    return {
        "engine": metas[0]["engine"],
        "batch": config.batch_size,
        "clips": len(links),
        "frames": frames,
        "seconds": seconds,
        "frames_per_s": frames / seconds,
        "steady_frames_per_s": steady_frames / steady_seconds if steady_seconds > 0 else float("nan"),
        "workers": config.workers,
    }


def fmt(rate: dict[str, float]) -> str:
    return f"{rate['median']:.1f} ({rate['best']:.1f})"


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/bench_features.json")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the f() engines run")
    parser.add_argument("--threads", type=int, default=2, help="torch/ONNX Runtime threads for f() (default 2)")
    parser.add_argument("--sizes", default="224,160", help="crop sizes in pixels, comma-separated")
    parser.add_argument("--batches", default="8,32", help="f() batch sizes, comma-separated (cuda: try 64,256)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timing window per figure")
    parser.add_argument("--stages", choices=("all", "none"), default="all", help="also time decode/detect/end to end")
    parser.add_argument("--workers", type=int, default=2, help="decode/detect processes in the end-to-end run")
    parser.add_argument("--copies", type=int, default=3, help="times each sample is processed in the end-to-end run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]

    videos = sorted(SAMPLES.glob("*.flv"))
    if not videos:
        raise SystemExit(f"no CREMA-D samples found in {SAMPLES}")
    frames = np.concatenate([read_video(v).frames for v in videos])  # (T, 360, 480, 3) uint8
    backbone = load_frame_encoder("offline")
    where = torch.cuda.get_device_name() if args.device == "cuda" else (platform.processor() or platform.machine())
    print(f"f() engines on {args.device} ({where}; {os.cpu_count()} CPUs, {args.threads} threads):", flush=True)
    rows = bench_engines(backbone, frames[::4], args.device, sizes, batches, args.seconds)
    record: dict = {"device": args.device, "where": where, "threads": args.threads, "torch": torch.__version__}
    record["engines"] = rows

    print(
        "\nframes/s: median call (fastest call); ratio to the first row of each size (PyTorch fp32, batch "
        f"{batches[0]}); max |diff| to PyTorch fp32 on the CPU\n"
    )
    print("| crop | engine | batch | frames/s | × torch fp32 | max abs diff | shares the fp32 fingerprint |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        same = f"yes (≤ {r['storage_step']:.4f})" if r["shares_fp32_fingerprint"] else "no: own fingerprint"
        print(
            f"| {r['image_size']} | {r['engine']} | {r['batch']} | {fmt(r['fps'])} | {r['ratio']:.2f}× | "
            f"{r['max_abs_diff']:.4f} | {same} |"
        )

    if args.stages == "all":
        stages = bench_stages(videos, frames, args.seconds)
        old = bench_end_to_end(videos, args.copies, FeatureConfig(workers=args.workers, **OLD_PATH))
        new = bench_end_to_end(videos, args.copies, FeatureConfig(workers=args.workers))
        record.update(stages=stages, end_to_end_old=old, end_to_end_new=new)
        shape = stages["frame_shape"]
        print(f"\n| stage, 1 process, {shape[1]}×{shape[0]} frames → 224 px crops | frames/s |")
        print("|---|---|")
        print(f"| decode (OpenCV) | {fmt(stages['fps_decode'])} |")
        print(f"| detect + crop (MediaPipe BlazeFace) | {fmt(stages['fps_detect_crop'])} |")
        print(f"\nend to end, cold, {args.workers} workers, 224 px, {old['clips']} clips / {old['frames']} frames:\n")
        print("| path | seconds | frames/s with start-up | frames/s steady | × old |")
        print("|---|---|---|---|---|")
        for label, e in (("old: torch fp32, batch 8", old), (f"default: {new['engine']}, batch {new['batch']}", new)):
            print(
                f"| {label} | {e['seconds']:.1f} | {e['frames_per_s']:.1f} | {e['steady_frames_per_s']:.1f} | "
                f"{e['frames_per_s'] / old['frames_per_s']:.2f}× |"
            )

    atomic_write_json(args.out, record)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
