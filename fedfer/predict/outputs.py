"""What `fedfer predict` writes: per-frame and per-clip tables (CSV and JSON), annotated videos.

    frames.csv        one row per predicted frame: clip, frame, time_s, face box, detected, p_<class>, label
    clips.csv         one row per source: frames, detection rate, frames/s, final probabilities, label, status
    predictions.json  the model, its classes, and every clip with its frames (same numbers as the CSVs)
    <clip>.annotated.mp4   with --annotate: face box, running label, one probability bar per class

Tables are written atomically when a source ends; a video is written to a hidden file beside its
name and moved into place when complete.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fedfer.io import atomic_write_json, atomic_write_text
from fedfer.predict.pipeline import FramePrediction

FRAMES_FILE = "frames.csv"
CLIPS_FILE = "clips.csv"
PREDICTIONS_FILE = "predictions.json"
ANNOTATED_SUFFIX = ".annotated.mp4"


@dataclass
class ClipResult:
    """One source's predictions: the per-frame rows and, once it ends, the clip's outcome."""

    clip: str  # the source's name in the outputs (file stem, or camera<N>)
    source: str
    classes: tuple[str, ...]
    frames: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"  # "ok" or "skipped"
    reason: str = ""
    seconds: float = 0.0  # wall time from the first frame read to the last prediction

    def add(self, prediction: FramePrediction) -> None:
        x, y, w, h = prediction.box
        self.frames.append(
            {
                "frame": prediction.index,
                "time_s": round(prediction.time_s, 4),
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "detected": prediction.detected,
                "probabilities": [round(float(p), 6) for p in prediction.probabilities],
                "label": self.classes[int(np.argmax(prediction.probabilities))],
            }
        )

    def summary(self) -> dict[str, Any]:
        last = self.frames[-1] if self.frames else None
        return {
            "clip": self.clip,
            "source": self.source,
            "status": self.status,
            "reason": self.reason,
            "frames": len(self.frames),
            "detection_rate": round(sum(f["detected"] for f in self.frames) / len(self.frames), 4) if last else 0.0,
            "frames_per_s": round(len(self.frames) / self.seconds, 2) if self.seconds > 0 else 0.0,
            "probabilities": last["probabilities"] if last else [],
            "label": last["label"] if last else "",
        }


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_tables(out_dir: Path, model: str, classes: tuple[str, ...], results: list[ClipResult]) -> None:
    """frames.csv, clips.csv and predictions.json for every clip so far (rewritten whole, atomically)."""
    columns = [f"p_{c}" for c in classes]

    def flat(row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k != "probabilities"}
        return {**out, **dict(zip(columns, row["probabilities"]))}

    frame_rows = [{"clip": r.clip, **flat(f)} for r in results for f in r.frames]
    frame_fields = ["clip", "frame", "time_s", "x", "y", "w", "h", "detected", *columns, "label"]
    atomic_write_text(out_dir / FRAMES_FILE, _csv(frame_rows, frame_fields))
    summaries = [r.summary() for r in results]
    clip_rows = [flat({**s, "probabilities": s["probabilities"] or [""] * len(classes)}) for s in summaries]
    clip_fields = ["clip", "source", "status", "reason", "frames", "detection_rate", "frames_per_s", *columns, "label"]
    atomic_write_text(out_dir / CLIPS_FILE, _csv(clip_rows, clip_fields))
    atomic_write_json(
        out_dir / PREDICTIONS_FILE,
        {
            "model": model,
            "classes": list(classes),
            "clips": [{**s, "per_frame": r.frames} for s, r in zip(summaries, results)],
        },
    )


# ------------------------------------------------------------------------------ annotated video

BAR_WIDTH = 120  # pixels of a probability bar at probability 1
ROW = 16  # pixels per class row of the bar panel


def annotate(frame: np.ndarray, prediction: FramePrediction, classes: tuple[str, ...]) -> np.ndarray:
    """A BGR copy of `frame` with the face box, the running label and one probability bar per class."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    x, y, w, h = prediction.box
    best = int(np.argmax(prediction.probabilities))
    colour = (0, 200, 0) if prediction.detected else (0, 200, 200)  # yellow: box carried over
    cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, 2)
    label = f"{classes[best]} {prediction.probabilities[best]:.2f}"
    cv2.putText(bgr, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    for row, (name, p) in enumerate(zip(classes, prediction.probabilities)):
        top = 4 + row * ROW
        cv2.rectangle(bgr, (40, top), (40 + int(BAR_WIDTH * float(p)), top + ROW - 4), (255, 160, 0), -1)
        cv2.putText(bgr, name, (4, top + ROW - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return bgr


@contextmanager
def annotated_video(path: Path, fps: float) -> Iterator[VideoSink]:
    """A sink of BGR frames for an MP4 at `path`: written to a hidden file beside it and moved into place
    when the block ends, even when it ends by an error after some frames (what was predicted is kept);
    nothing is left when no frame came."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    sink = VideoSink(tmp, fps)
    try:
        yield sink
    finally:
        sink.close()
        if sink.frames:
            os.replace(tmp, path)
        Path(tmp).unlink(missing_ok=True)


class VideoSink:
    """cv2.VideoWriter opened on the first frame, when the frame size is known."""

    def __init__(self, path: str, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def append(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            height, width = bgr.shape[:2]
            self.writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write MP4 video to {self.path} (no mp4v encoder in this build)")
        self.writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
