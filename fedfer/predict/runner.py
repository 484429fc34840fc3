"""`fedfer predict`'s loop: each source through the streaming pipeline, its outputs written as it ends.

Files and cameras take the same path; a camera differs only in holding back no frame before the
first face (it cannot go back in time) and in ending when it stops, at --max-frames or on Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from fedfer.config import PredictConfig
from fedfer.data.faces import NoFaceError, open_detector, resolve_detector
from fedfer.data.video import VideoError
from fedfer.predict.outputs import ANNOTATED_SUFFIX, ClipResult, annotate, annotated_video, write_tables
from fedfer.predict.pipeline import Engine, stream_predictions
from fedfer.predict.sources import FrameSource


@dataclass(frozen=True)
class SourceSpec:
    """A source to predict on, opened only when its turn comes."""

    clip: str  # its name in the outputs
    name: str  # the file path or camera<N>
    open: Callable[[], FrameSource]
    live: bool = False  # a camera: no frame held back before the first face


def predict_sources(
    sources: list[SourceSpec], engine: Engine, config: PredictConfig, out_dir: Path, model: str
) -> list[ClipResult]:
    """Predict along every source; a video that cannot be read or shows no face is a skipped row, not an error.

    The tables in `out_dir` are rewritten after each source, so an interrupted run keeps what it did.
    """
    spec = resolve_detector(engine.faces.detector, engine.faces.min_confidence)
    results: list[ClipResult] = []
    with open_detector(spec) as detector:
        for item in sources:
            result = ClipResult(item.clip, item.name, engine.classes)
            results.append(result)
            interrupted = False
            start = time.perf_counter()
            try:
                source = item.open()
                with ExitStack() as stack:
                    sink = None
                    if config.annotate:
                        path = out_dir / f"{item.clip}{ANNOTATED_SUFFIX}"
                        sink = stack.enter_context(annotated_video(path, source.fps or config.camera_fps))
                    for prediction in stream_predictions(source, detector, engine, hold=0 if item.live else None):
                        result.add(prediction)
                        if sink is not None:
                            sink.append(annotate(prediction.frame, prediction, engine.classes))
            except (NoFaceError, VideoError) as exc:
                result.status, result.reason = "skipped", str(exc)
            except KeyboardInterrupt:  # how a camera is stopped: keep what was predicted
                result.reason, interrupted = "interrupted", True
            result.seconds = time.perf_counter() - start
            write_tables(out_dir, model, engine.classes, results)
            if interrupted:
                break
    return results
