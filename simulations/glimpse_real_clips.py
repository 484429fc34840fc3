"""What each pseudo-labeller says about the three real CREMA-D clips in tests/data (a glimpse, not a benchmark).

The feature teachers are those of a run's world (`--world`, default small, seed 0): g() trained on
its stills (affectnet) and on its training actors' frames (crema-frames); the real clips' features
are extracted with the same settings. The FER-2013 model reads the clips' face pixels.

    python simulations/glimpse_real_clips.py --world small --workspace data
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from study_args import study_parser

from fedfer.data.extract import extract_video_features
from fedfer.data.fer2013 import video_probabilities
from fedfer.model.checkpoint import load_head
from fedfer.model.pseudo import clip_probabilities
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages

CLIPS = sorted((Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d-samples").glob("*.flv"))


def main(argv: list[str] | None = None) -> None:
    options = options_from_args(study_parser(__doc__, flags="world").parse_args(argv))
    classes = options.task.classes
    answers: dict[str, np.ndarray] = {}  # teacher → (3, K) frame-mean probabilities
    with tempfile.TemporaryDirectory(prefix="fedfer-real-") as tmp:
        store = extract_video_features(CLIPS, Path(tmp), replace(options.features, workers=0), progress=False)
        features = [store.load(p.stem) for p in CLIPS]
    for teacher in ("affectnet", "crema-frames"):
        prepared = run_stages(replace(options, teacher=teacher))
        g, _ = load_head(prepared.ifer, stage="ifer", backbone_id=prepared.backbone_id, classes=classes)
        answers[teacher] = clip_probabilities(g, features)
    answers["fer2013-mini-xception"] = video_probabilities(CLIPS, classes)

    print(f"| clip | true (intended) | {' | '.join(answers)} |")
    print("|---" * (2 + len(answers)) + "|")
    for i, path in enumerate(CLIPS):
        cells = [f"{classes[int(p[i].argmax())]} {100 * p[i].max():.0f}%" for p in answers.values()]
        print(f"| {path.name} | {path.stem.split('_')[2]} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
