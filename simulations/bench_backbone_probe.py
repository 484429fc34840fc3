"""How useful are the offline backbone's features? A linear probe on still images and on video frames.

Logistic regression (scikit-learn) on frozen f() features of the world's AffectNet-shaped stills
(train → official-validation test) and of its CREMA-D-shaped video frames (training actors → test
actors, each frame labelled with its clip's label), against the same probe on raw pixels (48×48
grey face crops) as a reference. Uses the feature caches that `fedfer train` / `fedfer run` made.

    python simulations/bench_backbone_probe.py --world small
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from study_args import study_parser

from fedfer.data.datasets.affectnet import load_affectnet
from fedfer.io import atomic_write_json
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages
from fedfer.stages.sets import still_features


def probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    model.fit(x_train.astype(np.float32), y_train)
    predicted = model.predict(x_test.astype(np.float32))
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "macro_f1": float(f1_score(y_test, predicted, average="macro")),
    }


def pixels(images) -> np.ndarray:
    """48×48 grey crops of the annotated face boxes, flattened."""
    rows = []
    for im in images:
        grey = cv2.imread(str(im.path), cv2.IMREAD_GRAYSCALE)
        x, y, w, h = im.box
        rows.append(cv2.resize(grey[y : y + h, x : x + w], (48, 48)).ravel() / 255.0)
    return np.stack(rows)


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, out="results/bench_backbone_probe.json", flags="world")
    parser.add_argument(
        "--frames-per-clip", type=int, default=4, help="frames sampled per training clip for the video probe"
    )
    args = parser.parse_args(argv)
    options = options_from_args(args)
    prepared = run_stages(options)
    stills = still_features(prepared.world, prepared.workspace, prepared.features, prepared.task)
    protocol = load_affectnet(prepared.world.affectnet, num_classes=prepared.task.num_classes, seed=prepared.task.seed)
    rng = np.random.default_rng(args.seed)

    def frames(actors: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Up to --frames-per-clip random frames of each labelled clip, each with its clip's label."""
        clips = prepared.sequences(actors)
        picks = [f[rng.choice(len(f), size=min(args.frames_per_clip, len(f)), replace=False)] for f in clips.inputs]
        return np.concatenate(picks), np.concatenate([[label] * len(p) for label, p in zip(clips.labels, picks)])

    results = {
        "backbone": prepared.backbone_id,
        "image_size": options.features.image_size,
        "stills_f": probe(stills["train"].inputs, stills["train"].labels, stills["test"].inputs, stills["test"].labels),
        "stills_pixels": probe(
            pixels(protocol.train),
            np.array([im.label for im in protocol.train]),
            pixels(protocol.test),
            np.array([im.label for im in protocol.test]),
        ),
        "video_frames_f": probe(*frames(prepared.split["train"]), *frames(prepared.split["test"])),
    }
    atomic_write_json(args.out, results)
    print(
        f"linear probe, {len(prepared.task.classes)} classes, "
        f"backbone {results['backbone']} at {results['image_size']} px"
    )
    print("| input | accuracy | macro F1 |\n|---|---|---|")
    for name in ("stills_f", "stills_pixels", "video_frames_f"):
        print(f"| {name} | {100 * results[name]['accuracy']:.1f} | {100 * results[name]['macro_f1']:.1f} |")


if __name__ == "__main__":
    main()
