"""What each pseudo-labeller says about the three real CREMA-D clips in tests/data (a glimpse, not a benchmark).

The feature teachers are those of a run's world (`--world`, default small, seed 0): g() trained on
its stills (affectnet) and on its training actors' frames (crema-frames); the real clips' features
are extracted with the same settings. The FER-2013 model reads the clips' face pixels.

    python simulations/glimpse_real_clips.py --world small --workspace data
    python simulations/glimpse_real_clips.py --onset --out results/onset

`--onset` asks only whether the clips start neutral, as a per-clip baseline of g() would need: the
FER-2013 model's P(neutral) and most frequent class in each tenth of each clip (no world needed);
with `--out` it also writes OUT/onset.json (stamped, in the format of docs/results/).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from study_args import study_parser

from fedfer.data.extract import extract_video_features
from fedfer.data.fer2013 import FER2013_CLASSES, frame_probabilities, video_probabilities
from fedfer.io import atomic_write_json
from fedfer.model.checkpoint import load_head
from fedfer.model.pseudo import clip_probabilities
from fedfer.publish.result_tables import markdown
from fedfer.publish.study_settings import published
from fedfer.runs.options import options_from_args
from fedfer.runs.study import run_stages

CLIPS = sorted((Path(__file__).resolve().parents[1] / "tests" / "data" / "crema-d-samples").glob("*.flv"))


TENTHS = 10


def onset_rows() -> list[list[str]]:
    """Per clip: its intended class, then P(neutral) (%) and the most frequent class per tenth of its frames."""
    neutral = FER2013_CLASSES.index("NEU")
    rows = []
    for path, p in zip(CLIPS, frame_probabilities(CLIPS), strict=True):  # p: (T, 7)
        cells = []
        for part in np.array_split(p, TENTHS):
            top = FER2013_CLASSES[int(np.bincount(part.argmax(1), minlength=len(FER2013_CLASSES)).argmax())]
            cells.append(f"{100 * part[:, neutral].mean():.0f} {top}")
        rows.append([path.name, path.stem.split("_")[2], str(len(p)), *cells])
    return rows


def onset(out: Path | None) -> None:
    table = {
        "columns": ["clip", "intended", "frames", *(f"tenth {i + 1}" for i in range(TENTHS))],
        "rows": onset_rows(),
    }
    print("\n".join(markdown(table["columns"], table["rows"])))
    if out is not None:
        settings = {"model": "fer2013-mini-xception", "detector": "mediapipe"}
        atomic_write_json(out / "onset.json", published({"onset": table}, settings, synthetic_world=False))


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__, flags="world")
    parser.add_argument("--onset", action="store_true", help="only: do the clips start neutral? (FER-2013, per tenth)")
    parser.add_argument("--out", type=Path, help="with --onset: write OUT/onset.json")
    args = parser.parse_args(argv)
    if args.onset:
        onset(args.out)
        return
    options = options_from_args(args)
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
