"""Speed of streaming prediction (`fedfer predict`) at 224 px on 1 and 2 threads: per stage and end to end,
PyTorch and ONNX Runtime side by side.

Stages, each timed per frame over the three real CREMA-D samples (480×360 FLV, 184 frames):
decode (OpenCV), face detection + crop (BlazeFace), f() (MobileNetV2, batch 1), one v() step, and
end to end (`stream_predictions`: every stage of a frame, from decoding it to its running
probabilities). f() and the v() step run in PyTorch (fp32, channels_last, inference_mode) and in
ONNX Runtime (the graphs `fedfer export` writes; `intra_op_num_threads` = threads, no inter-op
pool). The process is pinned to `threads` cores (os.sched_setaffinity) so MediaPipe's own threads
share them too; the figures are for one and two cores, not one and two busy threads.

Speed does not depend on the weights' values: v() is an untrained head unless --checkpoint names
one; f() has the offline weights (random ones give subnormal activations and slow, erratic timings).

    python simulations/bench_predict.py --out results/bench_predict.json
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
import torch
from study_args import study_parser

from fedfer.config import FeatureConfig
from fedfer.data.backbone import load_frame_encoder
from fedfer.data.datasets import EMOTIONS_6
from fedfer.data.encoder import FEATURE_DIM
from fedfer.data.faces import CropSettings, open_detector, resolve_detector, square_crop
from fedfer.data.video import iter_frames
from fedfer.io import atomic_write_bytes, atomic_write_json
from fedfer.model.checkpoint import HeadCard, load_head
from fedfer.model.heads import VFERHead
from fedfer.model.streaming import StreamingVFER
from fedfer.predict.choice import LoadedModel, ModelChoice
from fedfer.predict.exported import OnnxEngine, export_onnx, onnx_bytes, ort_session
from fedfer.predict.pipeline import Engine, TorchEngine, stream_predictions
from fedfer.predict.sources import video_source

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d-samples"
TARGETS = {"fps_1": 30.0, "fps_2": 60.0, "p95_ms_2": 33.0}  # the goals: frames/s on 1 and 2 cores, p95 on 2


def summary(seconds: list[float]) -> dict[str, float]:
    """Per-frame latencies (s) → frames/s over the whole run and p50/p95 latency in ms."""
    ms = np.array(seconds) * 1000
    return {
        "frames": len(ms),
        "fps": len(ms) / (ms.sum() / 1000),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
    }


def per_item(fn: Callable[[object], object], items: Iterable[object], passes: int) -> dict[str, float]:
    """Latency of `fn(item)` per item, over `passes` passes after one warm-up pass."""
    items = list(items)
    for item in items:
        fn(item)
    seconds = []
    for _ in range(passes):
        for item in items:
            start = time.perf_counter()
            fn(item)
            seconds.append(time.perf_counter() - start)
    return summary(seconds)


def per_yield(make: Callable[[], Iterable[object]], passes: int) -> dict[str, float]:
    """Time between successive items of a fresh `make()` stream, over `passes` streams after a warm-up one."""
    for _ in make():
        pass
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        for _ in make():
            now = time.perf_counter()
            seconds.append(now - start)
            start = now
    return summary(seconds)


def decode_all(videos: list[Path]) -> Iterable[np.ndarray]:
    for video in videos:
        yield from iter_frames(video)[1]


def end_to_end(videos: list[Path], detector, engine: Engine) -> Iterable[object]:
    for video in videos:
        yield from stream_predictions(video_source(video, engine.faces.frame_step), detector, engine)


def bench_threads(threads: int, videos: list[Path], model: LoadedModel, export_dir: Path, passes: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(threads)))
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    frames = list(decode_all(videos))  # (H, W, 3) uint8 RGB
    crop = CropSettings(image_size=model.choice.features.image_size)
    rows: dict[str, dict] = {"decode": per_yield(lambda: decode_all(videos), passes)}
    with open_detector(resolve_detector("mediapipe")) as detector:
        boxes = {}

        def detect_crop(i: int) -> np.ndarray:
            box = detector.detect(frames[i]) or boxes.get(i - 1)
            boxes[i] = box
            return square_crop(frames[i], box, crop.margin, crop.image_size)

        rows["detect + crop"] = per_item(detect_crop, range(len(frames)), passes)
        crops = [detect_crop(i) for i in range(len(frames))]

        x = [model.backbone.preprocess(c[None]) for c in crops]  # (1, 3, S, S) channels_last
        with torch.inference_mode():
            rows["f() torch"] = per_item(model.backbone.encoder, x, passes)
        f_session = ort_session(export_dir / "f.onnx", threads)
        rows["f() onnxruntime"] = per_item(lambda t: f_session.run(None, {"image": t.numpy()}), x, passes)

        v = StreamingVFER(model.v)
        h = v.initial_state()
        features = [torch.from_numpy(model.backbone.encode(c[None], 1).astype(np.float32)) for c in crops[:64]]
        with torch.inference_mode():
            rows["v() step torch"] = per_item(lambda f: v(f, *h), features, passes)
        v_session = ort_session(export_dir / "v_step.onnx", threads)
        state = {"h": h[0].numpy(), "c": h[1].numpy()}
        rows["v() step onnxruntime"] = per_item(
            lambda f: v_session.run(None, {"features": f.numpy(), **state}), features, passes
        )

        torch_engine, onnx_engine = TorchEngine(model, threads), OnnxEngine(export_dir, threads)
        rows["end to end torch"] = per_yield(lambda: end_to_end(videos, detector, torch_engine), passes)
        rows["end to end onnxruntime"] = per_yield(lambda: end_to_end(videos, detector, onnx_engine), passes)
    return rows


def export_for_bench(model: LoadedModel, out: Path) -> None:
    """fv_step.onnx + card (as `fedfer export` writes them) and, for the per-stage rows, f() and v() alone."""
    export_onnx(model, out)
    size = model.choice.features.image_size
    image = torch.zeros(1, 3, size, size)
    atomic_write_bytes(out / "f.onnx", onnx_bytes(model.backbone.encoder, (image,), (["image"], ["features"])))
    v = StreamingVFER(model.v)
    h, c = v.initial_state()
    inputs = (torch.zeros(1, FEATURE_DIM), h, c)
    atomic_write_bytes(out / "v_step.onnx", onnx_bytes(v, inputs, (["features", "h", "c"], ["p", "h_out", "c_out"])))


def fmt(row: dict) -> str:
    return f"{row['fps']:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/bench_predict.json")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--passes", type=int, default=3, help="timed passes over the samples per figure")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--checkpoint", type=Path, help="a v() checkpoint to time (default: an untrained v())")
    args = parser.parse_args(argv)

    backbone = load_frame_encoder("offline")
    if args.checkpoint:
        v, card = load_head(args.checkpoint, stage="vfer", backbone_id=backbone.backbone_id)
    else:
        v, card = (
            VFERHead(len(EMOTIONS_6)).eval(),
            HeadCard("vfer", EMOTIONS_6, backbone.backbone_id, batchnorm="keras"),
        )
    choice = ModelChoice(
        args.checkpoint or Path("untrained"), None, FeatureConfig(image_size=args.image_size), None, "benchmark v()"
    )
    model = LoadedModel(choice, backbone, v, card, None)  # type: ignore[arg-type]
    videos = sorted(SAMPLES.glob("*.flv"))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        export_for_bench(model, Path(tmp))
        results = {n: bench_threads(n, videos, model, Path(tmp), args.passes) for n in args.threads}
    load_after = os.getloadavg()

    print(
        f"\nstreaming prediction, {args.image_size}×{args.image_size} crops, {len(videos)} CREMA-D samples "
        f"(480×360), {args.passes} passes; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after\n"
    )
    header = " | ".join(f"{n} core{'s' if n > 1 else ''}: frames/s | p50 ms | p95 ms" for n in args.threads)
    print(f"| stage | {header} |")
    print("|---|" + "---|---|---|" * len(args.threads))
    for stage in results[args.threads[0]]:
        print(f"| {stage} | " + " | ".join(fmt(results[n][stage]) for n in args.threads) + " |")
    print("\nONNX Runtime / PyTorch, frames/s:")
    for stage in ("f()", "v() step", "end to end"):
        ratio = {
            n: results[n][f"{stage} onnxruntime"]["fps"] / results[n][f"{stage} torch"]["fps"] for n in args.threads
        }
        print(f"  {stage}: " + ", ".join(f"{n} core{'s' if n > 1 else ''} ×{r:.2f}" for n, r in ratio.items()))
    if {1, 2} <= set(args.threads):
        print("\ntargets (end to end):")
        for engine in ("torch", "onnxruntime"):
            one, two = results[1][f"end to end {engine}"], results[2][f"end to end {engine}"]
            print(
                f"  {engine}: 1 core {one['fps']:.1f} frames/s (goal ≥ {TARGETS['fps_1']:.0f}), "
                f"2 cores {two['fps']:.1f} frames/s (goal ≥ {TARGETS['fps_2']:.0f}), "
                f"p95 on 2 cores {two['p95_ms']:.1f} ms (goal ≤ {TARGETS['p95_ms_2']:.0f})"
            )
    atomic_write_json(
        args.out,
        {
            "image_size": args.image_size,
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": load_after},
            "torch": torch.__version__,
            "threads": {str(n): results[n] for n in args.threads},
        },
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
