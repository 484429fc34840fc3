"""Study a rendered synthetic world: label statistics against real CREMA-D, face detection rate,
render speed.

    python simulations/study_world.py --preset small --seed 0 --out data/world-small
    python simulations/study_world.py --preset tiny --out /tmp/w --real tests/data/crema-d/labels.csv
    python simulations/study_world.py --preset full --plan-only      # label statistics in seconds

Renders the world first when it is not there yet (through `fedfer.synth.render_world`). Whether
frames alone are enough and how much an actor's own clips help are measured with the real
MobileNetV2 features and trained heads by `simulations/study_personalization.py`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from study_args import study_parser

from fedfer.data.datasets import EMOTIONS_6
from fedfer.data.datasets.crema_d import load_crema_d
from fedfer.io import read_csv
from fedfer.synth import get_preset, render_world
from fedfer.synth.crema_d import plan_corpus
from fedfer.synth.raters import plurality


def label_stats(votes: list[list[int]], intended: list[str], levels: list[str]) -> dict[str, float | str]:
    """CREMA-D's label statistics from face votes per clip (counts in EMOTIONS_6 order), the intended
    emotion and the level of each clip."""
    tops = [plurality(np.asarray(f), EMOTIONS_6) for f in votes]
    agree = np.array([t == [e] for t, e in zip(tops, intended)])
    perceived = Counter(t[0] for t in tops if len(t) == 1)
    n = np.array([sum(f) for f in votes])
    stats: dict[str, float | str] = {
        "clips": len(votes),
        "face plurality = intended": float(agree.mean()),
        "face ties": float(np.mean([len(t) > 1 for t in tops])),
        "largest perceived class": perceived.most_common(1)[0][0],
        "raters per clip (min/mean/max)": f"{n.min()}/{n.mean():.2f}/{n.max()}",
    }
    for level in ("LO", "MD", "HI", "XX"):
        emotional = np.array([lv == level and e != "NEU" for lv, e in zip(levels, intended)])
        if emotional.any():
            stats[f"  agreement at level {level} (emotional clips)"] = float(agree[emotional].mean())
    return stats


def rendered_stats(clips) -> dict[str, float | str]:
    return label_stats(
        [c.meta["votes"]["face"] for c in clips],
        [c.intended for c in clips],
        [c.clip_id.rsplit("_", 1)[1] for c in clips],
    )


def planned_stats(preset: str, seed: int) -> dict[str, float | str]:
    """The same statistics from the planned ratings, without rendering a pixel (seconds even for `full`)."""
    world = get_preset(preset)
    clips = plan_corpus(world.crema_d, world.raters, seed)
    return label_stats(
        [c.ratings["face"].counts.tolist() for c in clips], [c.emotion for c in clips], [c.level for c in clips]
    )


def real_stats(labels_csv: Path) -> dict[str, float | str]:
    columns = [f"face_votes_{e}" for e in EMOTIONS_6] + ["intended", "level"]
    rows = read_csv(labels_csv, columns=columns)
    votes = [[int(r[f"face_votes_{e}"]) for e in EMOTIONS_6] for r in rows]
    return label_stats(votes, [r["intended"] for r in rows], [r["level"] for r in rows])


def detection_rate(clips) -> tuple[int, int]:
    """(frames, frames with a face found) over every clip, with fedfer's BlazeFace detector."""
    from fedfer.data.faces import open_detector, resolve_detector
    from fedfer.data.video import iter_frames

    frames = found = 0
    with open_detector(resolve_detector("mediapipe")) as detector:
        for clip in clips:
            for rgb in iter_frames(clip.path)[1]:
                frames += 1
                found += detector.detect(rgb) is not None
    return frames, found


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="the world's folder (rendered there when missing); not needed with --plan-only")
    parser.add_argument(
        "--real", default=str(Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d" / "labels.csv")
    )
    parser.add_argument("--no-detection", action="store_true", help="skip the face-detection pass over every video")
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="label statistics from the planned ratings only: no rendering, no detection",
    )
    args = parser.parse_args(argv)
    if not args.plan_only and not args.out:
        parser.error("--out is required unless --plan-only is given")

    if args.plan_only:
        ours = planned_stats(args.preset, args.seed)
    else:
        manifests = render_world(args.preset, args.seed, args.out, progress=True)
        print(f"== world {args.preset} seed {args.seed} in {args.out}")
        for corpus, m in manifests.items():
            frames = m.get("frames") or (m.get("train_images", 0) + m.get("valid_images", 0))
            print(
                f"  {corpus:<11} "
                f"{json.dumps({k: v for k, v in m.items() if k not in ('corpus', 'preset', 'seed', 'fedfer_version')})}"
                f"  -> {frames / max(m['seconds'], 1e-9):.0f} frames or images per s"
            )
        clips = load_crema_d(Path(args.out) / "crema_d", label_mode="face")
        ours = rendered_stats(clips)
    real = real_stats(Path(args.real)) if Path(args.real).is_file() else {}
    print(f"== CREMA-D-shaped labels (face raters), {args.preset} seed {args.seed}   synthetic | real CREMA-D (target)")
    targets = {"face plurality = intended": "55-80%", "face ties": "3-10%", "largest perceived class": "NEU"}
    for key, value in ours.items():
        fmt = (lambda v: f"{v:.1%}") if isinstance(value, float) else str
        print(f"  {key:<40} {fmt(value):>10} | {fmt(real[key]) if key in real else '-':>10} {targets.get(key, '')}")
    if args.plan_only or args.no_detection:
        return
    start = time.perf_counter()
    frames, found = detection_rate(clips)
    print(
        f"== face detection (BlazeFace): found in {found / frames:.1%} of {frames} frames "
        f"({frames / (time.perf_counter() - start):.0f} frames/s with decoding)"
    )


if __name__ == "__main__":
    main()
