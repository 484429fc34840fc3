"""The truth sidecar: what each clip really expresses, kept beside a corpus in `_truth/`.

Files: `_truth/README.txt` (this description, per corpus), `_truth/items.csv` (one row per clip or
image: intended emotion, intensity, envelope frames, the expressed mixture = the share of votes an
average rater would give each emotion, and the perceived AU intensities: the change from the
clip's opening frames at its most changed frames), `_truth/actors.json` (each actor's identity and
style: expressivity per emotion, resting face and the emotion it looks like, cue substitutions).

Nothing in fedfer's training reads it: it exists for oracle baselines (personalising with true
labels, the ceiling that pseudo labels aim at) and for diagnosing failures. The real loaders never
look inside `_truth/`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.synth.expression import AUS
from fedfer.synth.takes import Take

TRUTH_DIR = "_truth"


def write_truth(root: Path, rows: Sequence[dict], actors: dict[str, dict], what: str) -> None:
    """Write the sidecar for one corpus; `what` says in one paragraph what its rows are."""
    out = root / TRUTH_DIR
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(out / "items.csv", buf.getvalue())
    atomic_write_json(out / "actors.json", actors)
    atomic_write_text(out / "README.txt", (__doc__ or "").strip() + "\n\nThis corpus: " + what + "\n")


def take_row(
    clip_id: str,
    actor: str,
    intended: str,
    intensity: float,
    take: Take,
    emotions: Sequence[str],
    expressed: np.ndarray,
    **extra: object,
) -> dict:
    """The truth row of one video: identity of the take, its envelope, expressed mixture and the
    AU changes a viewer perceives (from the opening frames to the apex)."""
    row: dict = {
        "clip": clip_id,
        "actor": actor,
        **extra,
        "intended": intended,
        "intensity": intensity,
        "n_frames": len(take.plan.aus),
        "fps": take.plan.fps,
        "onset": take.onset,
        "apex": take.apex,
        "offset": take.offset,
    }
    row.update({f"expressed_{e}": float(p) for e, p in zip(emotions, expressed)})
    row.update({f"perceived_{au}": float(v) for au, v in zip(AUS, take.perceived)})
    return row
