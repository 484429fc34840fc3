"""Study a rendered synthetic world: label statistics against real CREMA-D, face detection rate,
render speed, and quick proxies for the properties the method's claims need.

    python simulations/study_world.py --preset small --seed 0 --out data/world-small
    python simulations/study_world.py --preset tiny --out /tmp/w --real ../shared/data/crema-d/labels.csv

Renders the world first when it is not there yet (through `fedfer.synth.render_world`).

Proxies (linear models on 24x24 grey face crops, train actors vs held-out actors, clip labels =
face-rater plurality, ties left out):
* frames vs change: a per-frame classifier averaged over the clip, against one that sees each
  clip's change from its own first frames (the actor's neutral start). The world is built so that
  the second is clearly better (speech, resting faces, onset dynamics).
* actor adaptation: the same per-frame classifier on features centred per actor with the actor's
  own unlabeled frames. Better held-out scores mean that an actor's unlabeled clips carry what is
  needed to adapt to it.
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

CROP = 24  # px, side of the grey crops the proxies use


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


def face_crops(clips, max_frames: int | None = None) -> tuple[list[np.ndarray], float]:
    """Per clip, (T, CROP*CROP) float32 grey crops of the detected face; and the detection rate."""
    import cv2

    from fedfer.faces import open_detector, resolve_detector
    from fedfer.video import iter_frames

    spec = resolve_detector("mediapipe")
    crops, found, total = [], 0, 0
    with open_detector(spec) as detector:
        for clip in clips:
            _, frames = iter_frames(clip.path)
            seq, last = [], None
            for rgb in frames:
                box = detector.detect(rgb)
                total += 1
                found += box is not None
                box = box or last
                last = box
                if box is None:
                    continue
                x, y, w, h = box
                side = int(max(w, h) * 1.2)
                cx, cy = x + w // 2, y + h // 2
                x0, y0 = max(0, cx - side // 2), max(0, cy - side // 2)
                face = cv2.cvtColor(rgb[y0 : y0 + side, x0 : x0 + side], cv2.COLOR_RGB2GRAY)
                seq.append(cv2.resize(face, (CROP, CROP), interpolation=cv2.INTER_AREA).reshape(-1).astype(np.float32) / 255.0)
            crops.append(np.stack(seq) if seq else np.zeros((1, CROP * CROP), np.float32))
    return crops, found / max(total, 1)


def proxies(clips, crops: list[np.ndarray], seed: int = 0) -> dict[str, float]:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    labelled = [i for i, c in enumerate(clips) if c.meta["votes"]["face"].count(max(c.meta["votes"]["face"])) == 1]
    y = np.array([int(np.argmax(clips[i].meta["votes"]["face"])) for i in labelled])
    actors = sorted({c.actor for c in clips})
    rng = np.random.default_rng(seed)
    test_actors = set(rng.choice(actors, size=max(1, len(actors) // 3), replace=False))
    is_test = np.array([clips[i].actor in test_actors for i in labelled])

    pca = PCA(64, random_state=seed).fit(np.concatenate([crops[i] for i in labelled if clips[i].actor not in test_actors]))
    feats = [pca.transform(c) for c in crops]  # (T, 64) per clip
    actor_mean = {a: np.concatenate([feats[i] for i, c in enumerate(clips) if c.actor == a]).mean(0) for a in actors}

    def clip_scores(frame_feats: list[np.ndarray]) -> float:
        xs = np.concatenate([frame_feats[i] for k, i in enumerate(labelled) if not is_test[k]])
        ys = np.concatenate([np.full(len(frame_feats[i]), y[k]) for k, i in enumerate(labelled) if not is_test[k]])
        model = LogisticRegression(max_iter=500, C=0.5, class_weight="balanced").fit(xs, ys)
        pred = [model.classes_[model.predict_proba(frame_feats[i]).mean(0).argmax()] for k, i in enumerate(labelled) if is_test[k]]
        return f1_score(y[is_test], pred, average="macro")

    def change(f: np.ndarray) -> np.ndarray:
        t = len(f)
        start = f[: max(1, t // 8)].mean(0)
        return np.concatenate([f[int(t * 0.4) : max(int(t * 0.9), int(t * 0.4) + 1)].mean(0) - start, f.std(0)])

    xc = np.stack([change(feats[i]) for i in labelled])
    model = LogisticRegression(max_iter=500, C=0.5, class_weight="balanced").fit(xc[~is_test], y[~is_test])
    return {
        "held-out actors": len(test_actors),
        "per-frame averaged, macro F1": clip_scores(feats),
        "change from own start, macro F1": f1_score(y[is_test], model.predict(xc[is_test]), average="macro"),
        "per-frame, actor-centred (unlabeled), macro F1": clip_scores([f - actor_mean[c.actor] for f, c in zip(feats, clips)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--real", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "crema-d" / "labels.csv"))
    parser.add_argument("--no-proxies", action="store_true")
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
        fmt = (lambda v: f"{v:.1%}") if isinstance(value, float) else str  # noqa: E731
        print(f"  {key:<32} {fmt(value):>10} | {fmt(real[key]) if key in real else '-':>10} {targets.get(key, '')}")
    if args.no_proxies:
        return
    start = time.perf_counter()
    crops, rate = face_crops(clips)
    frames = sum(len(c) for c in crops)
    print(f"== face detection (BlazeFace): found in {rate:.1%} of {frames} frames ({frames / (time.perf_counter() - start):.0f} frames/s with decoding)")
    print("== property proxies (linear models on 24x24 face crops)")
    for key, value in proxies(clips, crops, args.seed).items():
        print(f"  {key:<48} {value:.3f}" if isinstance(value, float) else f"  {key:<48} {value}")


if __name__ == "__main__":
    main()
