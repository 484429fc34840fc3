"""Plans → pixels: a clip or still is fully described by a plan (arrays + seed), rendered by a pure
function, so rendering can run in worker processes and give the same bytes in any order.

Labels and truth are computed from the plans (the AU tracks the renderer draws), never from the
files, which is what lets an interrupted render resume by skipping videos already on disk.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
from tqdm import tqdm

from fedfer.io import atomic_write_bytes
from fedfer.synth.actors import Identity
from fedfer.synth.camera import Camera, backdrop, lighting, noise_bank, pose_at
from fedfer.synth.face import FacePainter, face_box, landmarks68

PARTIAL = ".partial"  # marker in the names of videos being written; removed when a render restarts
# FFmpeg's FLV muxer knows the FLV1 codec by its FLV tag (2), not by the fourcc: passing the tag
# writes the same stream without a warning per file.
_CODEC_TAGS = {"FLV1": 2}


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one video. Arrays: aus (T, N_AUS), speech (T, 3),
    blink (T,), pose (T, 6) = cx, cy, scale, roll, yaw, pitch."""

    clip_id: str
    rel_path: str  # path under the corpus root
    identity: Identity
    camera: Camera
    fps: float
    fourcc: str
    aus: np.ndarray
    speech: np.ndarray
    blink: np.ndarray
    pose: np.ndarray
    seed: int


@dataclass(frozen=True)
class StillPlan:
    """One still image; identity None renders a frame without a face (AffectNet's No-Face)."""

    rel_path: str
    identity: Identity | None
    camera: Camera
    aus: np.ndarray  # (N_AUS,)
    pose: np.ndarray  # (6,)
    jpeg_quality: int
    seed: int


def _gaze(rng: np.random.Generator, n_frames: int) -> np.ndarray:
    """(T, 2) gaze offsets that hold and jump (saccades)."""
    jumps = rng.random(n_frames) < 0.08
    targets = rng.normal(0, 0.5, (n_frames, 2))
    idx = np.maximum.accumulate(np.where(jumps, np.arange(n_frames), 0))
    return np.clip(targets[idx] * (idx > 0)[:, None], -1, 1).astype(np.float32)


def render_clip(plan: ClipPlan, root: Path) -> str:
    """Render `plan` to root/plan.rel_path (written under a temporary name, then renamed)."""
    rng = np.random.default_rng(plan.seed)
    cam = plan.camera
    bg = backdrop(rng, cam)
    light = lighting(rng, cam)
    noise = noise_bank(rng, cam)
    gaze = _gaze(rng, len(plan.aus))
    flicker = 1.0 + 0.02 * np.sin(np.arange(len(plan.aus)) * rng.uniform(0.3, 1.0))
    painter = FacePainter(plan.identity)
    target = root / plan.rel_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}{PARTIAL}{target.suffix}")
    tag = _CODEC_TAGS.get(plan.fourcc) or cv2.VideoWriter_fourcc(*plan.fourcc)
    writer = cv2.VideoWriter(str(tmp), tag, plan.fps, (cam.width, cam.height))
    if not writer.isOpened():
        raise RuntimeError(
            f"{tmp}: OpenCV cannot write {plan.fourcc!r} video here; check the OpenCV build (cv2.getBuildInformation())"
        )
    frame = np.empty_like(bg)
    try:
        for i in range(len(plan.aus)):
            np.copyto(frame, bg)
            painter.draw(
                frame, plan.aus[i], plan.speech[i], float(plan.blink[i]), pose_at(plan.pose, i), tuple(gaze[i])
            )
            cv2.multiply(frame, light, frame, scale=flicker[i] / 128.0)
            pos, neg = noise[(i * 3 + plan.seed) % len(noise)]
            cv2.add(frame, pos, frame)
            cv2.subtract(frame, neg, frame)
            writer.write(frame)
    finally:
        writer.release()
    os.replace(tmp, target)
    return plan.clip_id


def render_still(plan: StillPlan, root: Path) -> tuple[tuple[int, int, int, int], np.ndarray | None]:
    """Render `plan` as a JPEG; returns the face box (x, y, w, h) and (68, 2) landmarks (px)."""
    rng = np.random.default_rng(plan.seed)
    cam = plan.camera
    img = backdrop(rng, cam)
    box: tuple[int, int, int, int] = (0, 0, cam.width, cam.height)
    marks = None
    if plan.identity is not None:
        pose = pose_at(plan.pose[None, :], 0)
        gaze = tuple(float(v) for v in rng.normal(0, 0.3, 2))
        geometry = FacePainter(plan.identity).draw(img, plan.aus, np.zeros(3, np.float32), 0.0, pose, gaze)
        box = face_box(pose, plan.identity)
        marks = landmarks68(geometry, pose)
    cv2.multiply(img, lighting(rng, cam), img, scale=1 / 128.0)
    pos, neg = noise_bank(rng, cam, n=1)[0]
    cv2.add(img, pos, img)
    cv2.subtract(img, neg, img)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, plan.jpeg_quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {plan.rel_path} as JPEG")
    atomic_write_bytes(root / plan.rel_path, data.tobytes())
    return box, marks


T = TypeVar("T")
R = TypeVar("R")


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Pool | None]:
    """A pool of `workers` render processes (None for inline rendering when workers <= 1), shared
    by every corpus of a world so that process start-up is paid once."""
    if workers <= 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")  # safe whatever threads the parent holds
    with ctx.Pool(workers, initializer=_init_worker) as pool:
        yield pool


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T], pool: Pool | None, desc: str, progress: bool = True
) -> Iterator[R]:
    """`fn` over `items` in `pool` (inline when None), results in input order, with a tqdm bar.
    Each item carries its own seed, so the output does not depend on the number of workers."""
    bar = tqdm(total=len(items), desc=desc, unit="item", disable=not progress, leave=False)
    try:
        results = map(fn, items) if pool is None else pool.imap(fn, items, chunksize=4)
        for result in results:
            yield result
            bar.update()
    finally:
        bar.close()


def render_missing(plans: Sequence[ClipPlan], root: Path, pool: Pool | None, desc: str, progress: bool) -> int:
    """Render the plans whose video is not on disk yet (an interrupted render resumes here);
    returns how many were rendered."""
    todo = [p for p in plans if not (root / p.rel_path).exists()]
    for _ in parallel_map(functools.partial(render_clip, root=root), todo, pool, desc, progress):
        pass
    return len(todo)
