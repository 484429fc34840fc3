"""Study a rendered synthetic world: label statistics against real CREMA-D, face detection rate,
render speed.

    python simulations/study_world.py --preset small --seed 0 --out data/world-small
    python simulations/study_world.py --preset tiny --out /tmp/w --real ../shared/data/crema-d/labels.csv

Renders the world first when it is not there yet (through `fedfer.synth.render_world`). Whether
frames alone are enough and how much an actor's own clips help are measured with the real
MobileNetV2 features and trained heads by `simulations/study_personalization.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from fedfer.datasets import EMOTIONS_6
from fedfer.datasets.crema_d import load_crema_d
from fedfer.synth import render_world


def label_stats(clips) -> dict[str, float]:
    face = [c.meta["votes"]["face"] for c in clips]
    tops = [[e for e, v in zip(EMOTIONS_6, f) if v == max(f)] for f in face]
    perceived = Counter(t[0] for t in tops if len(t) == 1)
    n = np.array([sum(f) for f in face])
    return {
        "clips": len(clips),
        "face plurality = intended": float(np.mean([t == [c.intended] for t, c in zip(tops, clips)])),
        "face ties": float(np.mean([len(t) > 1 for t in tops])),
        "largest perceived class": perceived.most_common(1)[0][0],
        "raters per clip (min/mean/max)": f"{n.min()}/{n.mean():.2f}/{n.max()}",
    }


def real_stats(labels_csv: Path) -> dict[str, float]:
    rows = list(csv.DictReader(labels_csv.open()))
    perceived = Counter(r["face_plurality"] for r in rows if ":" not in r["face_plurality"])
    n = np.array([int(r["n_face"]) for r in rows])
    return {
        "clips": len(rows),
        "face plurality = intended": float(np.mean([r["face_plurality"] == r["intended"] for r in rows])),
        "face ties": float(np.mean([":" in r["face_plurality"] for r in rows])),
        "largest perceived class": perceived.most_common(1)[0][0],
        "raters per clip (min/mean/max)": f"{n.min()}/{n.mean():.2f}/{n.max()}",
    }


def detection_rate(clips) -> tuple[int, int]:
    """(frames, frames with a face found) over every clip, with fedfer's BlazeFace detector."""
    from fedfer.faces import open_detector, resolve_detector
    from fedfer.video import iter_frames

    frames = found = 0
    with open_detector(resolve_detector("mediapipe")) as detector:
        for clip in clips:
            for rgb in iter_frames(clip.path)[1]:
                frames += 1
                found += detector.detect(rgb) is not None
    return frames, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "crema-d" / "labels.csv"))
    parser.add_argument("--no-detection", action="store_true", help="skip the face-detection pass over every video")
    args = parser.parse_args()

    manifests = render_world(args.preset, args.seed, args.out, progress=True)
    print(f"== world {args.preset} seed {args.seed} in {args.out}")
    for corpus, m in manifests.items():
        frames = m.get("frames") or (m.get("train_images", 0) + m.get("valid_images", 0))
        print(f"  {corpus:<11} {json.dumps({k: v for k, v in m.items() if k not in ('corpus', 'preset', 'seed', 'fedfer_version')})}"
              f"  -> {frames / max(m['seconds'], 1e-9):.0f} frames or images per s")

    clips = load_crema_d(Path(args.out) / "crema_d", label_mode="face")
    ours = label_stats(clips)
    real = real_stats(Path(args.real)) if Path(args.real).is_file() else {}
    print("== CREMA-D-shaped labels (face raters)   synthetic | real CREMA-D (target)")
    targets = {"face plurality = intended": "55-80%", "face ties": "3-10%", "largest perceived class": "NEU"}
    for key, value in ours.items():
        fmt = (lambda v: f"{v:.1%}") if isinstance(value, float) else str
        print(f"  {key:<32} {fmt(value):>10} | {fmt(real[key]) if key in real else '-':>10} {targets.get(key, '')}")
    if args.no_detection:
        return
    start = time.perf_counter()
    frames, found = detection_rate(clips)
    print(f"== face detection (BlazeFace): found in {found / frames:.1%} of {frames} frames ({frames / (time.perf_counter() - start):.0f} frames/s with decoding)")

if __name__ == "__main__":
    main()
