"""The camera side of a corpus: frame size, framing, backdrop, lighting, sensor noise, head motion.

Corpora differ here on purpose (CREMA-D-shaped: a plain studio backdrop, head and shoulders,
even light; MSP-IMPROV-shaped: a room, a wider 4:3 frame, warm side light; AffectNet-shaped:
tight photo crops with varied colour casts), so that models meet a domain shift between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from fedfer.synth.face import Pose


@dataclass(frozen=True)
class Camera:
    """How one corpus films its actors.

    width/height: frame size, px. face_scale: range of face half-widths, px. centre_x/centre_y:
    range of the head centre as a fraction of the frame. backdrop: "studio" (smooth gradient) or
    "room" (furniture-like blocks) or "photo" (random gradients and blocks per image). light:
    range of the directional light strength (0 = flat). warmth: range of the colour cast (-1 cool
    .. 1 warm). noise_sd: sensor noise, grey levels. sway: head-motion amplitude, face units.
    """

    width: int
    height: int
    face_scale: tuple[float, float]
    centre_x: tuple[float, float]
    centre_y: tuple[float, float]
    backdrop: str
    light: tuple[float, float]
    warmth: tuple[float, float]
    noise_sd: float
    sway: float = 0.06


_BACKDROPS = ((150, 160, 130), (120, 130, 140), (170, 170, 165), (110, 125, 110), (90, 100, 120))


def _grid(camera: Camera, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Coarse (H/step, W/step) coordinate grids in [0, 1): smooth maps are computed on these and
    resized, which is ~50x cheaper than computing them per pixel."""
    h, w = -(-camera.height // step), -(-camera.width // step)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy / h, xx / w


def _full(small: np.ndarray, camera: Camera) -> np.ndarray:
    return cv2.resize(small, (camera.width, camera.height), interpolation=cv2.INTER_LINEAR)


def backdrop(rng: np.random.Generator, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8 background for one clip or image."""
    h, w = camera.height, camera.width
    yy, xx = _grid(camera)
    base = np.asarray(_BACKDROPS[rng.integers(len(_BACKDROPS))], np.float32) + rng.normal(0, 12, 3).astype(np.float32)
    slope = rng.normal(0, 0.25, 2)
    grad = 1.0 + slope[0] * (xx - 0.5) + slope[1] * (yy - 0.5)
    img = _full(np.clip(base[None, None, :] * grad[..., None], 0, 255).astype(np.uint8), camera)
    n_blocks = {"studio": 0, "room": int(rng.integers(3, 7)), "photo": int(rng.integers(0, 6))}[camera.backdrop]
    for _ in range(n_blocks):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 8, w // 2)), y0 + int(rng.integers(h // 8, h // 2))
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1, cv2.LINE_AA)
    if camera.backdrop == "photo":
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(1.0, 4.0)))
    return img


def lighting(rng: np.random.Generator, camera: Camera) -> np.ndarray:
    """(H, W, 3) uint8 multiplicative light map (128 = unchanged): a directional gradient, a
    vignette and a colour cast, applied to the whole frame with `cv2.multiply(..., scale=1/128)`."""
    yy, xx = _grid(camera)
    angle = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(*camera.light)
    direction = np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)
    vignette = 1.0 - 0.25 * (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) * 2)
    gain = (1.0 + strength * direction) * vignette * rng.uniform(0.85, 1.15)
    warmth = rng.uniform(*camera.warmth)
    cast = np.array([1.0 - 0.12 * warmth, 1.0, 1.0 + 0.12 * warmth], np.float32)  # BGR
    return _full(np.clip(128.0 * gain[..., None] * cast, 0, 255).astype(np.uint8), camera)


def noise_bank(rng: np.random.Generator, camera: Camera, n: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """`n` pairs of (positive, negative) uint8 noise frames; adding one and subtracting the other
    is saturating sensor noise at a fraction of the cost of drawing fresh noise every frame.

    The noise is uniform with the camera's standard deviation (amplitude sd*sqrt(3)) and drawn at
    half resolution (2x2 grain, like a compressed sensor's): integer draws cost a tenth of normal ones.
    """
    h, w = -(-camera.height // 2), -(-camera.width // 2)
    amplitude = max(1, round(camera.noise_sd * np.sqrt(3.0)))
    bank = []
    for _ in range(n):
        u = rng.integers(0, 2 * amplitude + 1, (h, w, 3), dtype=np.uint8)
        u = cv2.resize(u, (camera.width, camera.height), interpolation=cv2.INTER_NEAREST)
        bank.append((cv2.subtract(u, amplitude), cv2.subtract(np.full_like(u, amplitude), u)))
    return bank


def pose_track(rng: np.random.Generator, camera: Camera, n_frames: int, fps: float, head_motion: float) -> np.ndarray:
    """(T, 6) float32 cx, cy, scale, roll, yaw, pitch: a base placement plus slow sway
    (sums of random sinusoids, so motion is smooth and different in every clip)."""
    t = np.arange(n_frames, dtype=np.float32) / fps
    scale = rng.uniform(*camera.face_scale)
    cx = rng.uniform(*camera.centre_x) * camera.width
    cy = rng.uniform(*camera.centre_y) * camera.height
    amp = camera.sway * head_motion

    def wave(amplitude: float) -> np.ndarray:
        out = np.zeros_like(t)
        for _ in range(3):
            out += (
                amplitude
                * rng.uniform(0.2, 0.6)
                * np.sin(2 * np.pi * rng.uniform(0.15, 1.2) * t + rng.uniform(0, 2 * np.pi))
            )
        return out

    track = np.stack(
        [
            cx + wave(amp * scale),
            cy + wave(amp * scale * 0.6),
            scale * (1.0 + wave(amp * 0.3)),
            rng.normal(0, 0.04) + wave(amp * 1.2),
            rng.normal(0, 0.2) + wave(amp * 5.0),
            rng.normal(0, 0.15) + wave(amp * 3.0),
        ],
        axis=1,
    )
    return track.astype(np.float32)


def pose_at(track: np.ndarray, i: int) -> Pose:
    cx, cy, scale, roll, yaw, pitch = (float(v) for v in track[i])
    return Pose(cx, cy, scale, roll, min(1.0, max(-1.0, yaw)), min(1.0, max(-1.0, pitch)))
