"""One subject's local data, as a client holds it: a manifest of its clips and their features.

A subject directory holds `subject.json`: the subject id, the task's classes, the feature cache
directory, and its clips (id and, where the subject has them, labels). Labels measure the
personalized model in studies; the paper's personalization never reads them, and only the few-shot
option (`labels-from` subject or both) trains on K of them per class. They never leave the device.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MANIFEST = "subject.json"
PERSONAL_DIR = "personal"  # what personalization writes on the subject's device: v(), pseudo labels, a record
NO_LABEL = -1


def personal_checkpoint(subject_dir: Path) -> Path:
    """Where a subject's personalized v() is kept on its device (its other records sit beside it)."""
    return Path(subject_dir) / PERSONAL_DIR / "v.pt"


@dataclass
class SubjectData:
    subject: str
    classes: tuple[str, ...]
    clip_ids: list[str]
    features: list[np.ndarray]  # each (T_i, 1280) float16
    labels: np.ndarray  # (N,) int64, NO_LABEL where unknown; evaluation, and few-shot training if asked (labels-from)
    backbone_id: str = ""  # the f() the features come from (as the feature store records it)
    video_dir: Path | None = None  # the subject's own videos, where it holds them

    def videos(self) -> list[Path]:
        """The video of each clip, in clip order (a pixel-level teacher needs them)."""
        if self.video_dir is None:
            raise FileNotFoundError(
                f"subject {self.subject} holds features only: a pixel-level teacher needs its videos "
                "(its subject.json needs a video_dir: `fedfer run --teacher fer2013-mini-xception` writes one)"
            )
        found = videos_by_clip(self.video_dir, self.clip_ids)
        missing = [c for c in self.clip_ids if c not in found]
        if missing:
            raise FileNotFoundError(f"no video for clips {missing[:5]} of subject {self.subject} in {self.video_dir}")
        return [found[c] for c in self.clip_ids]

    @property
    def labelled(self) -> np.ndarray:
        """Positions of clips with a known label."""
        return np.flatnonzero(self.labels != NO_LABEL)

    def halves(self, protocol: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(adaptation, scored) clip positions under `protocol` (`fedfer.data.splits.protocol_positions`):
        the subject's device and the server's scoring draw the same ones from the run's seed."""
        from fedfer.data.splits import protocol_positions

        return protocol_positions(self.labels, protocol, seed, self.subject)


def write_subject(
    directory: Path,
    subject: str,
    classes: tuple[str, ...],
    feature_dir: Path,
    clips: list[tuple[str, int | None]],
    video_dir: Path | None = None,
    feature_config: dict | None = None,
) -> Path:
    """Write a subject's manifest (atomically); returns its path.

    With `video_dir` (videos named `<clip_id>.<ext>`), a subject that holds only raw videos extracts
    its features itself on first load, into `feature_dir`, with `feature_config` (FeatureConfig
    fields; they must match the settings the central heads were trained with).
    """
    from fedfer.io import atomic_write_json

    directory.mkdir(parents=True, exist_ok=True)
    manifest = {
        "subject": subject,
        "classes": list(classes),
        "feature_dir": str(Path(feature_dir).resolve()),
        "clips": [{"clip_id": c, "label": NO_LABEL if label is None else int(label)} for c, label in clips],
    }
    if video_dir is not None:
        manifest["video_dir"] = str(Path(video_dir).resolve())
        manifest["feature_config"] = feature_config or {}
    path = directory / MANIFEST
    atomic_write_json(path, manifest)
    return path


def read_manifest(directory: Path) -> dict:
    """A subject's manifest (`subject.json`) as written by `write_subject`, features not loaded.

    Raises FileNotFoundError / ValueError naming the manifest and the remedy."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"no {MANIFEST} in {directory}: prepare the subject with `fedfer run` / `fedfer deploy`, or point "
            "data-dir at a subject directory"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable subject manifest ({err}): prepare the run again") from err


def load_subject(directory: Path) -> SubjectData:
    """Read a subject's manifest and its cached features.

    Raises FileNotFoundError naming the manifest or the missing features, with the remedy.
    """
    from fedfer.data.store import FeatureStore

    path = Path(directory) / MANIFEST
    manifest = read_manifest(directory)
    feature_dir = Path(manifest["feature_dir"])
    if not feature_dir.is_absolute():
        feature_dir = path.parent / feature_dir
    store = FeatureStore(feature_dir)
    clips = manifest["clips"]
    if not clips:
        raise ValueError(
            f"{path} lists no clips for subject {manifest['subject']}: give the subject at least one video (or "
            "cached features) and prepare the run again, or leave the subject out of the run"
        )
    video_dir = Path(manifest["video_dir"]) if "video_dir" in manifest else None
    if video_dir is not None:
        clips = extract_missing(store, clips, video_dir, manifest.get("feature_config", {}), path)
    return SubjectData(
        subject=str(manifest["subject"]),
        classes=tuple(manifest["classes"]),
        clip_ids=[c["clip_id"] for c in clips],
        features=[store.load(c["clip_id"]) for c in clips],
        labels=np.array([c["label"] for c in clips], dtype=np.int64),
        backbone_id=str(store.meta(clips[0]["clip_id"]).get("backbone_id", "")),
        video_dir=video_dir,
    )


def videos_by_clip(video_dir: Path, clip_ids: list[str]) -> dict[str, Path]:
    """{clip id: video} for the clips of `clip_ids` that have a video `<clip_id>.<ext>` under `video_dir`."""
    from fedfer.data.video import find_videos

    wanted = set(clip_ids)
    return {p.stem: p for p in find_videos(video_dir) if p.stem in wanted} if Path(video_dir).is_dir() else {}


def extract_missing(store, clips: list[dict], video_dir: Path, feature_config: dict, manifest: Path) -> list[dict]:
    """Compute the features of clips the store lacks from the subject's own videos, on this machine.

    Returns the clips that have features afterwards; a clip whose video is missing or unusable is
    left out with a warning (its reason is in the feature folder's summary.csv).
    """
    from fedfer.config import FeatureConfig
    from fedfer.data.extract import extract_video_features

    done = set(store.clip_ids())
    missing = [c["clip_id"] for c in clips if c["clip_id"] not in done]
    if missing:
        videos = videos_by_clip(video_dir, missing)
        paths = [videos[c] for c in missing if c in videos]
        if paths:
            extract_video_features(paths, store.root, FeatureConfig(**feature_config), progress=False)
        done = set(store.clip_ids())
    usable = [c for c in clips if c["clip_id"] in done]
    if len(usable) < len(clips):
        warnings.warn(
            f"{manifest}: {len(clips) - len(usable)} clips have neither features nor a usable video in "
            f"{video_dir}; they are left out",
            stacklevel=2,
        )
    if not usable:
        raise FileNotFoundError(f"{manifest}: no clip has features in {store.root} or a usable video in {video_dir}")
    return usable


def read_subjects_file(path: Path) -> list[Path]:
    """The subject directories of a run, in partition-id order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"subjects file {path} not found: `fedfer run` writes it; check the run-dir / subjects-file setting"
        )
    return [Path(p) for p in json.loads(path.read_text())]
