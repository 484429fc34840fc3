"""The *crowd*: feature-level synthetic subjects, as many as a scale study needs, none of them on disk.

The rendered worlds have at most 91 actors; a federation of 1,000 or 10,000 subjects needs more.
A crowd subject is drawn, when its client is sampled, from a small model of the per-frame f()
features (1280-d) of real or rendered subjects:

    x_t = max(0, neutral + rest + a(t) · (delta[k] + style[k]) + noise_t)

- `neutral` (1280,): the mean first frame of a clip (expressions start from rest);
- `rest` (1280,): the subject's resting face, one draw per subject (the spread of subjects' first frames);
- `delta[k]` (K, 1280): emotion k's mean change from the first frame at the expression's peak;
- `style[k]` (K, 1280): the subject's own way of showing emotion k, one draw per subject and emotion;
- `a(t)` = sin(π (t + ½) / T): onset, apex and offset over a clip of T frames;
- `noise_t`: per-frame residual, drawn independently per frame and dimension.

Every spread is a per-dimension standard deviation measured on the source subjects. A subject is a
pure function of (crowd seed, subject index): nothing is stored per subject and nothing is held
between messages. This is a **systems workload** (it has the source's sizes, clip lengths, class
frequencies and the first-order structure pseudo labelling relies on), not a second FER corpus:
accuracy measured on a crowd says nothing about faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedfer.data.store import npz_bytes
from fedfer.data.subject import SubjectData, load_subject, read_subjects_file
from fedfer.io import atomic_write_bytes

FEATURE_DIM = 1280
CROWD_PREFIX = "crowd-"  # subject ids are crowd-<index>


def envelope(frames: int) -> np.ndarray:
    """(T,) expression strength per frame: 0 → 1 → 0 over the clip (onset, apex, offset)."""
    return np.sin(np.pi * (np.arange(frames) + 0.5) / frames)


@dataclass(frozen=True)
class CrowdModel:
    """The fitted model of subjects' features; see the module docstring for the formula."""

    classes: tuple[str, ...]
    class_freq: np.ndarray  # (K,) how often each emotion is a clip's label
    neutral: np.ndarray  # (1280,)
    delta: np.ndarray  # (K, 1280)
    rest_std: np.ndarray  # (1280,)
    style_std: np.ndarray  # (1280,)
    noise_std: np.ndarray  # (1280,)
    clip_frames: np.ndarray  # (C,) observed clip lengths in frames, drawn from uniformly
    clips_per_subject: int
    backbone_id: str = ""

    def save(self, path: Path) -> Path:
        """Write the model as one .npz (atomically); `load` reads it back."""
        arrays = {k: np.asarray(getattr(self, k)) for k in ("class_freq", "neutral", "delta", "rest_std")}
        arrays |= {k: np.asarray(getattr(self, k)) for k in ("style_std", "noise_std", "clip_frames")}
        meta = np.array([self.clips_per_subject])
        blob = npz_bytes(
            **arrays, classes=np.array(self.classes), backbone_id=np.array(self.backbone_id), clips_per_subject=meta
        )
        return atomic_write_bytes(path, blob)

    @classmethod
    def load(cls, path: Path | str) -> CrowdModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"crowd model {path} not found: fit one with `fit_crowd_model` "
                "(simulations/bench_scale.py does it from a prepared run)"
            )
        with np.load(path) as z:
            return cls(
                classes=tuple(str(c) for c in z["classes"]),
                class_freq=z["class_freq"],
                neutral=z["neutral"],
                delta=z["delta"],
                rest_std=z["rest_std"],
                style_std=z["style_std"],
                noise_std=z["noise_std"],
                clip_frames=z["clip_frames"],
                clips_per_subject=int(z["clips_per_subject"][0]),
                backbone_id=str(z["backbone_id"]),
            )

    def subject(self, seed: int, index: int) -> SubjectData:
        """Subject `index` of crowd `seed`: the same features and labels every time it is asked for."""
        if index < 0:
            raise ValueError(f"crowd subject index must be >= 0, got {index}")
        rng = np.random.default_rng([seed, index])
        k = len(self.classes)
        # float32 draws: half the work of float64 for features that are stored as float16 anyway.
        rest = (self.neutral + self.rest_std * rng.standard_normal(FEATURE_DIM)).astype(np.float32)
        shown = (self.delta + self.style_std * rng.standard_normal((k, FEATURE_DIM))).astype(np.float32)  # (K, 1280)
        labels = rng.choice(k, size=self.clips_per_subject, p=self.class_freq)
        frames = rng.choice(self.clip_frames, size=self.clips_per_subject)
        features = []
        for label, t in zip(labels, frames):
            noise = self.noise_std.astype(np.float32) * rng.standard_normal((t, FEATURE_DIM), dtype=np.float32)
            clip = rest + envelope(t).astype(np.float32)[:, None] * shown[label] + noise
            features.append(np.maximum(clip, 0.0).astype(np.float16))  # f() ends in ReLU6 pooling: never < 0
        return SubjectData(
            subject=f"{CROWD_PREFIX}{index}",
            classes=self.classes,
            clip_ids=[f"{CROWD_PREFIX}{index}-{j}" for j in range(len(features))],
            features=features,
            labels=labels.astype(np.int64),
            backbone_id=self.backbone_id,
        )


def fit_crowd_model(subjects: list[SubjectData]) -> CrowdModel:
    """Fit the crowd model to subjects with labelled clips (a run's test subjects, for instance).

    Raises ValueError when fewer than 2 subjects have labelled clips (no spread to measure)."""
    usable = [s for s in subjects if len(s.labelled)]
    if len(usable) < 2:
        raise ValueError(f"a crowd model needs at least 2 subjects with labelled clips, got {len(usable)}")
    classes = usable[0].classes
    k = len(classes)
    firsts, changes, labels, owners, frames = [], [], [], [], []
    for n, s in enumerate(usable):
        if s.classes != classes:
            raise ValueError(f"subject {s.subject} has classes {s.classes}, the first subject {classes}")
        for i in s.labelled:
            clip = np.asarray(s.features[i], dtype=np.float64)  # (T, 1280)
            a = envelope(len(clip))
            firsts.append(clip[0])
            changes.append((clip.mean(0) - clip[0]) / a.mean())  # the change at the peak
            labels.append(int(s.labels[i]))
            owners.append(n)
            frames.append(len(clip))
    firsts, changes = np.stack(firsts), np.stack(changes)
    labels, owners = np.array(labels), np.array(owners)
    neutral = firsts.mean(0)
    rest = np.stack([firsts[owners == n].mean(0) - neutral for n in range(len(usable))])
    delta = np.stack([changes[labels == c].mean(0) if (labels == c).any() else np.zeros(FEATURE_DIM) for c in range(k)])
    styles = [
        changes[(owners == n) & (labels == c)].mean(0) - delta[c]
        for n in range(len(usable))
        for c in range(k)
        if ((owners == n) & (labels == c)).any()
    ]
    residuals = []
    for s in usable:
        for i in s.labelled:
            clip = np.asarray(s.features[i], dtype=np.float64)
            a = envelope(len(clip))[:, None]
            residuals.append(clip - (clip[0] + a * (clip.mean(0) - clip[0]) / a.mean()))
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    return CrowdModel(
        classes=classes,
        class_freq=counts / counts.sum(),
        neutral=neutral,
        delta=delta,
        rest_std=rest.std(0),
        style_std=np.stack(styles).std(0),
        noise_std=np.concatenate(residuals).std(0),
        clip_frames=np.array(frames, dtype=np.int64),
        clips_per_subject=round(np.mean([len(s.features) for s in usable])),
        backbone_id=usable[0].backbone_id,
    )


def fit_crowd_from_run(subjects_file: Path) -> CrowdModel:
    """The crowd model of a prepared run's subjects (their labelled clips; labels only shape the model)."""
    return fit_crowd_model([load_subject(d) for d in read_subjects_file(subjects_file)])


def subjects_of_node(partition: int, subjects_per_node: int, crowd_size: int) -> range:
    """The crowd indices a simulated node serves: `subjects_per_node` consecutive ones (fewer on the last)."""
    first = partition * subjects_per_node
    if subjects_per_node < 1 or not 0 <= first < crowd_size:
        raise ValueError(
            f"node {partition} serves no subject of a crowd of {crowd_size} at {subjects_per_node} per node: "
            f"run ceil(crowd-size / subjects-per-node) = {-(-crowd_size // max(subjects_per_node, 1))} nodes"
        )
    return range(first, min(first + subjects_per_node, crowd_size))


def nodes_for(crowd_size: int, subjects_per_node: int) -> int:
    """How many simulated nodes serve a crowd of `crowd_size` at `subjects_per_node` each."""
    return -(-crowd_size // subjects_per_node)
