"""Drawing a head: identity + action units + speech → anti-aliased OpenCV primitives on a frame.

Geometry is computed in *face units* (1 = half the face width, origin between the eyes' level and
the nose, y down), displaced by the AUs, then mapped to pixels by the head pose (translation,
scale, roll; yaw and pitch shift features by their depth). Everything is filled polygons and
poly-lines with sub-pixel coordinates (`shift=4`) and `LINE_AA`, so a frame costs about a
millisecond and the face has the parts a face detector looks for: a skin-toned head, eyes with
whites and dark pupils, brows, nose shading, lips.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from fedfer.synth.actors import Identity
from fedfer.synth.face_parts import FaceGeometry, ellipse, face_geometry, quad

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


@dataclass(frozen=True)
class Pose:
    """Head placement in one frame: centre (px), scale (px per face unit), roll (rad), yaw and
    pitch (-1..1, shift features sideways / up-down in proportion to their depth)."""

    cx: float
    cy: float
    scale: float
    roll: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0


def _mix(colour: tuple[int, ...], factor: float, toward: tuple[int, ...] = (0, 0, 0)) -> tuple[int, ...]:
    """`colour` moved `factor` of the way toward `toward` (BGR ints); plain Python, as it runs
    dozens of times per frame."""
    return tuple(int(min(255.0, max(0.0, c + (t - c) * factor))) for c, t in zip(colour, toward))


def _px(points: np.ndarray, depth: float | np.ndarray, pose: Pose) -> np.ndarray:
    """Face units → int32 sub-pixel coordinates (for shift=_SHIFT); `depth` per part or per point."""
    c, s = np.cos(pose.roll) * pose.scale * _ONE, np.sin(pose.roll) * pose.scale * _ONE
    px, py = pose.yaw * 0.12 * depth, pose.pitch * 0.1 * depth
    x, y = points[:, 0] + px, points[:, 1] + py
    out = np.empty(points.shape, np.int32)
    out[:, 0] = c * x - s * y + pose.cx * _ONE + 0.5
    out[:, 1] = s * x + c * y + pose.cy * _ONE + 0.5
    return out


def _px_all(g: FaceGeometry, pose: Pose) -> dict[str, np.ndarray]:
    """`_px` of every part at once (one vectorised transform per frame instead of one per part)."""
    names = list(g.parts)
    points = np.concatenate([g.parts[n] for n in names])
    depth = np.concatenate([np.full(len(g.parts[n]), g.depth[n], np.float32) for n in names])
    return dict(zip(names, np.split(_px(points, depth, pose), np.cumsum([len(g.parts[n]) for n in names])[:-1])))


# Parts drawn by name, back to front within each feature: (fill "poly" or stroke "line", part, the
# painter's colour, extra stroke width over the crease width).
HEAD = (
    ("poly", "neck", "neck", 0),
    ("poly", "ear_l", "ear", 0),
    ("poly", "ear_r", "ear", 0),
    ("poly", "head", "skin", 0),
)
NOSE = (
    ("line", "bridge", "shade", 1),
    ("poly", "tip_shadow", "shade", 0),
    ("line", "ala_l", "crease", 0),
    ("line", "ala_r", "crease", 0),
    ("poly", "nostril_l", "dark", 0),
    ("poly", "nostril_r", "dark", 0),
)


class Wrinkle(NamedTuple):
    """Lines that show once their crease is visible enough, darker the more it shows."""

    crease: str  # its visibility in `face_geometry`'s creases
    threshold: float  # drawn above this visibility
    gain: float | None  # darkness = min(1, visibility × gain); None: the visibility itself
    depth: float  # for yaw / pitch parallax
    reference: str  # the part whose first point's height the lines hang from
    lines: Callable[[float], list[np.ndarray]]  # reference height → (n, 2) poly-lines in face units


WRINKLES = (
    Wrinkle(  # AU4: two short vertical lines between the brows
        "glabella",
        0.05,
        1.3,
        0.6,
        "brow_base",
        lambda base: [np.array([[x, base + 0.03], [x * 0.8, base + 0.14]]) for x in (-0.05, 0.05)],
    ),
    Wrinkle(  # AU1 / AU2: three arcs across the forehead
        "forehead",
        0.05,
        1.2,
        0.5,
        "brow_base",
        lambda base: [
            quad(np.array([-0.4, y + 0.02]), np.array([0.0, y - 0.02]), np.array([0.4, y + 0.02]), 9)
            for y in (base - 0.2 - 0.08 * k for k in range(3))
        ],
    ),
    Wrinkle(  # AU9: three chevrons across the bridge of the nose
        "nose_wrinkle",
        0.1,
        None,
        0.9,
        "bridge",
        lambda y0: [
            np.array([[-0.09, y + 0.01], [0.0, y - 0.01], [0.09, y + 0.01]])
            for y in (y0 + 0.05 + 0.045 * k for k in range(3))
        ],
    ),
)


class FacePainter:
    """Draws one actor's head in a frame; colours are derived once per actor."""

    def __init__(self, idn: Identity) -> None:
        self.idn = idn
        skin = idn.skin
        self.skin = skin
        self.shade = _mix(skin, 0.18)
        self.crease = _mix(skin, 0.38)
        self.dark = _mix(skin, 0.75)
        self.blush = _mix(skin, 0.12, (60, 60, 200))
        self.ear = _mix(skin, 0.1)
        self.neck = _mix(skin, 0.22)

    def draw(
        self,
        img: np.ndarray,
        aus: np.ndarray,
        speech: np.ndarray,
        blink: float,
        pose: Pose,
        gaze: tuple[float, float] = (0.0, 0.0),
    ) -> FaceGeometry:
        """Draw the head into `img` (H, W, 3) uint8 BGR, in place; returns the geometry used."""
        g, vis = face_geometry(self.idn, aus, speech, blink, gaze)
        pen = _Pen(img, _px_all(g, pose), pose)
        self._draw_head(pen)
        if vis["cheek"] > 0.05:  # AU6 flushes the cheeks
            blush = _mix(self.skin, 0.35 * vis["cheek"], self.blush)
            pen.poly("cheek_l", blush)
            pen.poly("cheek_r", blush)
        fold = _mix(self.skin, vis["nasolabial"], self.crease)
        pen.line("fold_l", fold)
        pen.line("fold_r", fold)
        self._draw_eyes(pen, g, vis)
        brow_colour = _mix(self.idn.hair_colour, 0.25) if self.idn.hair_style != "bald" else _mix(self.skin, 0.6)
        pen.poly("brow_l", brow_colour)
        pen.poly("brow_r", brow_colour)
        self._draw_wrinkles(pen, g, vis, WRINKLES[:2])
        self._draw_parts(pen, NOSE)
        self._draw_wrinkles(pen, g, vis, WRINKLES[2:])
        self._draw_mouth(pen, vis)
        if self.idn.glasses:
            self._draw_glasses(pen)
        return g

    def _draw_parts(self, pen: _Pen, parts: tuple[tuple[str, str, str, int], ...]) -> None:
        for kind, name, colour, extra_width in parts:
            if kind == "poly":
                pen.poly(name, getattr(self, colour))
            else:
                pen.line(name, getattr(self, colour), pen.width + extra_width)

    def _draw_head(self, pen: _Pen) -> None:
        """Torso, hair behind the head, neck, ears, head, then the hair's cap and fringe."""
        idn = self.idn
        pen.shape(ellipse(0.0, 3.2, 2.7, 1.5, 24), 0.0, idn.shirt)
        hair_back = {"long": ellipse(0.0, 0.35, 1.22, 1.6, 24), "bun": ellipse(0.0, -1.25, 0.42, 0.35, 16)}.get(
            idn.hair_style
        )
        if hair_back is not None:
            pen.shape(hair_back, 0.0, idn.hair_colour)
        self._draw_parts(pen, HEAD)
        if idn.hair_style != "bald":
            t = np.linspace(np.pi + 0.12, 2 * np.pi - 0.12, 20, dtype=np.float32)
            cap_top = np.stack([1.04 * np.cos(t), 1.25 * np.sin(t)], 1)
            fringe = quad(
                cap_top[-1] * [1, 0.55] + [0, -0.05], np.array([0.1, -0.82]), cap_top[0] * [1, 0.55] + [0, -0.05], 9
            )
            pen.shape(np.concatenate([cap_top, fringe]), 0.0, idn.hair_colour)

    def _draw_eyes(self, pen: _Pen, g: FaceGeometry, vis: dict[str, float]) -> None:
        """White, iris, pupil, then lids cover what lies outside the eye opening; lid lines, bags, crow's feet."""
        lid_h, lw = self.idn.eye_h * 1.2, pen.width
        for side in ("l", "r"):
            up, lo = g.parts[f"eye_up_{side}"], g.parts[f"eye_lo_{side}"]
            pen.shape(np.concatenate([up, lo[::-1]]), 0.6, (225, 228, 232))
            pen.poly(f"iris_{side}", self.idn.iris)
            pen.poly(f"pupil_{side}", (15, 15, 20))
            pen.shape(np.concatenate([up, (up - [0, lid_h])[::-1]]), 0.6, self.skin)
            pen.shape(np.concatenate([lo, (lo + [0, lid_h])[::-1]]), 0.6, self.skin)
            pen.stroke(up, 0.6, (25, 20, 20), lw + 1)
            pen.stroke(up - [0, self.idn.eye_h * 0.35], 0.6, self.crease, lw)
            pen.stroke(lo, 0.6, self.shade, lw)
            pen.line(f"bag_{side}", _mix(self.skin, 0.3 + 0.5 * vis["cheek"], self.crease))
            if vis["cheek"] > 0.25:
                pen.line(f"crow_{side}", _mix(self.skin, vis["cheek"], self.crease))

    def _draw_wrinkles(self, pen: _Pen, g: FaceGeometry, vis: dict[str, float], wrinkles: tuple[Wrinkle, ...]) -> None:
        """The `wrinkles` whose crease is visible past its threshold."""
        for w in wrinkles:
            if vis[w.crease] > w.threshold:
                strength = vis[w.crease] if w.gain is None else min(1.0, vis[w.crease] * w.gain)
                colour = _mix(self.skin, strength, self.crease)
                for points in w.lines(float(g.parts[w.reference][0, 1])):
                    pen.stroke(points, w.depth, colour, pen.width)

    def _draw_mouth(self, pen: _Pen, vis: dict[str, float]) -> None:
        """Lips, the opening with teeth when the lips part, the lip line, the chin boss (AU17), the dimple (AU14)."""
        pen.poly("lips", self.idn.lip_colour)
        if vis["aperture"] > 0.004:
            pen.poly("aperture", (35, 25, 45))
            pen.poly("teeth", (215, 222, 228))
        pen.line("lip_line", _mix(self.idn.lip_colour, 0.55))
        if vis["chin"] > 0.1:
            pen.line("chin_boss", _mix(self.skin, vis["chin"], self.crease))
        if vis["dimple"] > 0.1:
            pen.line("dimple", _mix(self.skin, vis["dimple"], self.crease))

    def _draw_glasses(self, pen: _Pen) -> None:
        """Rims around the eyes, temples to the ears, a bridge over the nose."""
        idn, frame_col, width = self.idn, (30, 30, 35), pen.width + 1
        for s in (-1, 1):
            rim = ellipse(s * idn.eye_dx, idn.eye_y + 0.01, idn.eye_w * 0.85, idn.eye_h * 1.75, 20)
            pen.stroke(rim, 0.6, frame_col, width, closed=True)
            temple = np.array([[s * (idn.eye_dx + idn.eye_w * 0.85), idn.eye_y - 0.02], [s * 0.98, idn.eye_y + 0.02]])
            pen.stroke(temple, 0.3, frame_col, width)
        inner = idn.eye_dx - idn.eye_w * 0.85
        bridge = np.array([[-inner, idn.eye_y - 0.02], [0.0, idn.eye_y - 0.05], [inner, idn.eye_y - 0.02]])
        pen.stroke(bridge, 0.8, frame_col, width)


class _Pen:
    """OpenCV's anti-aliased sub-pixel drawing on one frame: named parts (already in pixels) or face-unit shapes."""

    def __init__(self, img: np.ndarray, pixels: dict[str, np.ndarray], pose: Pose) -> None:
        self.img, self.pixels, self.pose = img, pixels, pose
        self.width = max(1, round(pose.scale * 0.022))  # crease line width, px

    def poly(self, name: str, colour: tuple[int, ...]) -> None:
        cv2.fillPoly(self.img, [self.pixels[name]], colour, _AA, _SHIFT)

    def line(self, name: str, colour: tuple[int, ...], width: int | None = None) -> None:
        cv2.polylines(self.img, [self.pixels[name]], False, colour, width or self.width, _AA, _SHIFT)

    def shape(self, points: np.ndarray, depth: float, colour: tuple[int, ...]) -> None:
        """Fill a polygon given in face units at `depth`."""
        cv2.fillPoly(self.img, [_px(points, depth, self.pose)], colour, _AA, _SHIFT)

    def stroke(
        self, points: np.ndarray, depth: float, colour: tuple[int, ...], width: int, closed: bool = False
    ) -> None:
        """Draw a poly-line given in face units at `depth`."""
        cv2.polylines(self.img, [_px(points, depth, self.pose)], closed, colour, width, _AA, _SHIFT)


def face_box(pose: Pose, idn: Identity) -> tuple[int, int, int, int]:
    """Annotated face box (x, y, width, height; px) from brows-top to chin, ear to ear."""
    corners = np.array([[-1.0, idn.eye_y - idn.brow_gap - 0.2], [1.0, idn.head_aspect - 0.2]], np.float32)
    pts = (
        _px(
            np.array(
                [
                    [corners[0, 0], corners[0, 1]],
                    [corners[1, 0], corners[0, 1]],
                    [corners[0, 0], corners[1, 1]],
                    [corners[1, 0], corners[1, 1]],
                ]
            ),
            0.0,
            pose,
        )
        / _ONE
    )
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    return int(x0), int(y0), round(x1 - x0), round(y1 - y0)


def landmarks68(g: FaceGeometry, pose: Pose) -> np.ndarray:
    """(68, 2) float32 pixel landmarks in the iBUG 68-point order (jaw 0-16, brows 17-26, nose
    27-35, eyes 36-47, mouth 48-67), read off the drawn geometry, as AffectNet's CSV carries."""

    def px(name: str, idx: np.ndarray | list[int] | slice) -> np.ndarray:
        return _px(g.parts[name][idx], g.depth[name], pose).astype(np.float32) / _ONE

    head = g.parts["head"]
    lower = np.where(head[:, 1] > 0.05)[0]  # jaw: outline points below the ears, left to right
    jaw_idx = lower[np.linspace(0, len(lower) - 1, 17).round().astype(int)]
    jaw = _px(head[jaw_idx], 0.0, pose).astype(np.float32)[::-1] / _ONE
    brow = lambda side: px(f"brow_{side}", [0, 2, 4, 6, 8])  # noqa: E731
    nose_bridge = px("bridge", [0, 1, 1, 2])
    nostrils = np.concatenate(
        [px("ala_l", [0]), px("nostril_l", [0]), px("tip_shadow", [5]), px("nostril_r", [0]), px("ala_r", [0])]
    )
    eye = lambda side, order: np.concatenate([px(f"eye_up_{side}", order[:4]), px(f"eye_lo_{side}", order[4:])])  # noqa: E731
    left_eye = eye("l", [8, 5, 3, 0, 3, 5])
    right_eye = eye("r", [0, 3, 5, 8, 5, 3])
    lips = g.parts["lips"]
    n = len(lips) // 2
    outer = np.concatenate([lips[:n][[0, 2, 5, 7, 9, 12, 14]], lips[n:][[1, 4, 7, 10, 12]]])
    ap = g.parts["aperture"]
    inner = np.concatenate([ap[:n][[1, 5, 7, 9, 13]], ap[n:][[5, 7, 9]]])
    mouth = _px(np.concatenate([outer, inner]), 0.8, pose).astype(np.float32) / _ONE
    return np.concatenate([jaw, brow("l")[::-1], brow("r"), nose_bridge, nostrils, left_eye, right_eye, mouth])
