"""The frozen-feature cache: every clip's per-frame f() features, computed once.

f() never trains, so running MobileNetV2 over every frame at every epoch would repeat the same
arithmetic; instead each clip becomes one `<clip_id>.npz` holding `features` (T, 1280) float16 and
a JSON `meta` record. The meta carries a fingerprint of everything that changes the numbers
(backbone weights, detector and its settings, crop size and margin, frame step, f()'s arithmetic when it
is not float32; see `fedfer.data.runtimes` for why the float32 engines share one): a rerun keeps clips
whose fingerprint matches and recomputes the others, so an interrupted run resumes where it stopped
and a changed backbone or detector never mixes with old features.

Decoding and face detection run in worker processes; f() runs batched in this process.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fedfer import __version__
from fedfer.config import FeatureConfig
from fedfer.data.backbone import Backbone, load_frame_encoder
from fedfer.data.encoder import FEATURE_DIM
from fedfer.data.faces import (
    Box,
    CropSettings,
    DetectorPool,
    DetectorSpec,
    FaceTrack,
    resolve_detector,
    try_image_face,
    try_video_faces,
)
from fedfer.data.store import FeatureStore, npz_bytes
from fedfer.data.video import find_videos
from fedfer.io import atomic_write_bytes, atomic_write_text, digest

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.csv"
SUMMARY_FIELDS = ("clip_id", "frames", "fps", "detection_rate", "status", "reason")


def folder_name(path: Path) -> str | None:
    """The default speaker of a video: the name of the folder it is in (one folder per person)."""
    return path.parent.name or None


@dataclass(frozen=True)
class Extractor:
    """The resolved pieces of one extraction: backbone, detector, crop settings and their fingerprint."""

    backbone: Backbone
    detector: DetectorSpec
    crop: CropSettings
    settings: dict[str, Any]  # everything that changes the features
    fingerprint: str  # sha256 of `settings`, 16 hex digits

    @classmethod
    def build(cls, config: FeatureConfig) -> Extractor:
        backbone = load_frame_encoder(config.weights).on(config.backend, config.precision, config.device)
        detector = resolve_detector(config.detector, config.min_confidence)
        crop = CropSettings(margin=config.margin, image_size=config.image_size, frame_step=config.frame_step)
        settings = {
            "backbone_id": backbone.backbone_id,
            "weights_sha256": backbone.weights_sha256,
            "detector": detector.settings(),
            "image_size": crop.image_size,
            "margin": crop.margin,
            "frame_step": crop.frame_step,
        }
        # float32 engines agree within the float16 rounding of the stored features and share a fingerprint
        # (the one features had before engines could be chosen); bfloat16 ones get their own.
        if backbone.runtime.precision != "fp32":
            settings["precision"] = backbone.runtime.precision
        return cls(backbone, detector, crop, settings, digest(settings, 16))


# A spawned worker pays seconds of imports (torch, MediaPipe) before its first task; below this many
# tasks per worker the start-up costs more than the parallel decoding saves, so the work stays in-process.
MIN_TASKS_PER_WORKER = 24


def _pool_size(config: FeatureConfig, tasks: int) -> int:
    return min(config.workers, os.cpu_count() or 1, tasks // MIN_TASKS_PER_WORKER)


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def _summary_row(clip_id: str, meta: dict[str, Any] | None, status: str, reason: str) -> dict[str, Any]:
    frames = meta["frames"] if meta else 0
    fps = round(meta["fps"], 3) if meta else ""
    rate = round(meta["detection_rate"], 4) if meta else ""
    return {
        "clip_id": clip_id,
        "frames": frames,
        "fps": fps,
        "detection_rate": rate,
        "status": status,
        "reason": reason,
    }


def extract_video_features(
    videos: list[Path] | Path,
    out_dir: Path,
    config: FeatureConfig,
    progress: bool = True,
    speaker_of: Callable[[Path], str | None] = folder_name,
) -> FeatureStore:
    """Cache f() features of every video (a list of files, or a folder searched recursively) in `out_dir`.

    Clips already cached with the same fingerprint are kept; unusable videos (missing, unreadable,
    no frame, no face) become `skipped` rows of `out_dir/summary.csv` instead of stopping the run.
    `speaker_of` names the person in a video (a corpus' naming rule; default: the video's folder).
    """
    if isinstance(videos, Path):
        paths = find_videos(videos) if videos.is_dir() else [videos]
    else:
        paths = [Path(v) for v in videos]
    store = FeatureStore(out_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    extractor = Extractor.build(config)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    todo: list[tuple[str, Path]] = []
    for path in paths:
        clip_id = path.stem
        if clip_id in seen:
            rows.append(
                _summary_row(clip_id, None, "skipped", f"duplicate clip id: {path} has the same name as another video")
            )
        elif (meta := store.cached_meta(clip_id)) is not None and meta.get("fingerprint") == extractor.fingerprint:
            rows.append(_summary_row(clip_id, meta, "ok", "cached"))
        else:
            todo.append((clip_id, path))
        seen.add(clip_id)
    log.info("%d clips cached, %d to compute in %s", len(paths) - len(todo), len(todo), out_dir)

    pool = DetectorPool(extractor.detector, _pool_size(config, len(todo)))
    results = pool.map(try_video_faces, ((path, extractor.crop) for _, path in todo))
    try:
        with closing(results), tqdm(total=len(todo), unit="clip", disable=not progress, desc="features") as bar:
            for (clip_id, path), result in zip(todo, results):
                rows.append(_encode_clip(store, extractor, clip_id, path, speaker_of(path), result, config.batch_size))
                bar.update(1)
    finally:  # the summary also records how far an interrupted run got
        _write_summary(store.root / SUMMARY_FILE, rows)
    return store


def _encode_clip(
    store: FeatureStore,
    extractor: Extractor,
    clip_id: str,
    path: Path,
    speaker: str | None,
    result: FaceTrack | str,
    batch_size: int,
) -> dict[str, Any]:
    """Run f() on one clip's face crops and save them; returns the clip's summary row."""
    if isinstance(result, str):
        log.warning("skipped %s: %s", path, result)
        return _summary_row(clip_id, None, "skipped", result)
    features = extractor.backbone.encode(result.crops, batch_size)  # (T, 1280) float16
    meta = {
        "clip_id": clip_id,
        "source": str(path),
        "actor": speaker,
        "frames": len(features),
        "fps": result.source_fps / extractor.crop.frame_step,  # rate of the stored sequence
        "source_fps": result.source_fps,
        "detection_rate": result.detection_rate,
        **extractor.settings,
        "fingerprint": extractor.fingerprint,
        "engine": extractor.backbone.runtime.name,  # which engine computed them (not part of the fingerprint)
        "fedfer_version": __version__,
    }
    store.save(clip_id, features, meta)
    return _summary_row(clip_id, meta, "ok", "")


# ------------------------------------------------------------------------------ still images


def extract_image_features(
    items: list[tuple[Path, Box | None]],
    out_file: Path,
    config: FeatureConfig,
    chunk_size: int = 1024,
    progress: bool = True,
) -> np.ndarray:
    """f() features of still images → (N, 1280) float16, in `items` order, cached in `out_file` (.npz).

    Each item is (image path, face box (x, y, w, h) or None to detect one). A row of NaN marks an
    image that could not be read or had no face; `out_file` also stores the `ok` mask and reasons.
    Work is saved per chunk of `chunk_size` images beside `out_file`, so a rerun resumes; all files
    are written atomically and the chunks are removed once `out_file` is complete.
    """
    out_file = Path(out_file)
    extractor = Extractor.build(config)
    # absolute paths: the same images named relative or absolute share one cache
    keys = [[str(Path(p).resolve()), list(b) if b is not None else None] for p, b in items]
    fingerprint = digest([extractor.fingerprint, keys], 16)
    if out_file.is_file():
        with np.load(out_file) as data:
            if json.loads(str(data["meta"])).get("fingerprint") == fingerprint:
                return data["features"]
    parts = out_file.parent / f".{out_file.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    chunks = [
        (i, items[start : start + chunk_size], digest([fingerprint, keys[start : start + chunk_size]], 16))
        for i, start in enumerate(range(0, len(items), chunk_size))
    ]
    todo = [c for c in chunks if not _chunk_done(parts / f"{c[0]:06d}.npz", c[2])]

    pool = DetectorPool(extractor.detector, _pool_size(config, sum(len(c[1]) for c in todo)))
    results = pool.map(try_image_face, ((p, box, extractor.crop) for _, chunk, _ in todo for p, box in chunk))
    with (
        closing(results),
        tqdm(total=sum(len(c[1]) for c in todo), unit="img", disable=not progress, desc="image features") as bar,
    ):
        for index, chunk, chunk_fp in todo:
            crops = [next(results) for _ in chunk]
            ok = np.array([not isinstance(c, str) for c in crops])
            features = np.full((len(chunk), FEATURE_DIM), np.nan, dtype=np.float16)
            if ok.any():
                features[ok] = extractor.backbone.encode(
                    np.stack([c for c in crops if not isinstance(c, str)]), config.batch_size
                )
            reasons = [c if isinstance(c, str) else "" for c in crops]
            atomic_write_bytes(
                parts / f"{index:06d}.npz",
                npz_bytes(
                    features=features, ok=ok, reasons=np.array(json.dumps(reasons)), fingerprint=np.array(chunk_fp)
                ),
            )
            bar.update(len(chunk))

    return _assemble_chunks(parts, [c[0] for c in chunks], out_file, {**extractor.settings, "fingerprint": fingerprint})


def _assemble_chunks(parts: Path, indices: list[int], out_file: Path, settings: dict) -> np.ndarray:
    """Join the saved chunks into `out_file` (features, ok mask, reasons, meta) and remove them."""
    feature_parts, ok_parts, reasons = [np.zeros((0, FEATURE_DIM), np.float16)], [np.zeros(0, bool)], []
    for index in indices:
        with np.load(parts / f"{index:06d}.npz") as data:
            feature_parts.append(data["features"])
            ok_parts.append(data["ok"])
            reasons += json.loads(str(data["reasons"]))
    features, ok = np.concatenate(feature_parts), np.concatenate(ok_parts)
    meta = {**settings, "images": len(ok), "ok": int(ok.sum()), "fedfer_version": __version__}
    atomic_write_bytes(
        out_file,
        npz_bytes(features=features, ok=ok, reasons=np.array(json.dumps(reasons)), meta=np.array(json.dumps(meta))),
    )
    shutil.rmtree(parts)
    if not ok.all():
        log.warning(
            "%d of %d images gave no features (unreadable or no face); see 'reasons' in %s",
            int((~ok).sum()),
            len(ok),
            out_file,
        )
    return features


def _chunk_done(path: Path, fingerprint: str) -> bool:
    try:
        with np.load(path) as data:
            return str(data["fingerprint"]) == fingerprint
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return False
