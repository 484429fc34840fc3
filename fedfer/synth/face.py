"""Drawing a head: identity + action units + speech → anti-aliased OpenCV primitives on a frame.

Geometry is computed in *face units* (1 = half the face width, origin between the eyes' level and
the nose, y down), displaced by the AUs, then mapped to pixels by the head pose (translation,
scale, roll; yaw and pitch shift features by their depth). Everything is filled polygons and
poly-lines with sub-pixel coordinates (`shift=4`) and `LINE_AA`, so a frame costs about a
millisecond and the face has the parts a face detector looks for: a skin-toned head, eyes with
whites and dark pupils, brows, nose shading, lips.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from fedfer.synth.actors import Identity
from fedfer.synth.expression import AU_INDEX

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


@functools.cache
def _quad_basis(n: int) -> np.ndarray:
    u = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return np.stack([(1 - u) * (1 - 2 * u), 4 * u * (1 - u), u * (2 * u - 1)])  # (3, n, 1)


def _quad(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) points on the parabola through p0, p1 (middle) and p2."""
    b = _quad_basis(n)
    return p0 * b[0] + p1 * b[1] + p2 * b[2]


@functools.cache
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False, dtype=np.float32)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 20) -> np.ndarray:
    return _unit_circle(n) * np.array([ax, ay], np.float32) + np.array([cx, cy], np.float32)


class FaceGeometry:
    """Named point sets (face units) of one frame's face; built by `face_geometry`."""

    def __init__(self) -> None:
        self.parts: dict[str, np.ndarray] = {}  # name → (n, 2) float32
        self.depth: dict[str, float] = {}  # name → depth for yaw / pitch parallax

    def add(self, name: str, points: np.ndarray, depth: float) -> None:
        self.parts[name] = np.asarray(points, np.float32)
        self.depth[name] = depth


def face_geometry(
    idn: Identity, aus: np.ndarray, speech: np.ndarray, blink: float, gaze: tuple[float, float] = (0.0, 0.0)
) -> tuple[FaceGeometry, dict[str, float]]:
    """Face parts for AU intensities `aus` (N_AUS,), speech (jaw, round, close) and eyelid closure.

    Returns the geometry and the scalar visibilities of creases (wrinkle darkness, 0-1) that the
    drawing uses. Each AU moves what FACS says it moves; the comments name the AU.
    """
    a = {name: float(aus[i]) for name, i in AU_INDEX.items()}
    jaw_speech, rounding, closure = (float(v) for v in speech)
    jaw = min(1.0, 0.9 * a["AU26"] + jaw_speech)  # AU26 and speech share the jaw
    g = FaceGeometry()

    # Head outline: upper half-ellipse to the crown, lower half narrowing to the chin; the chin
    # drops with the jaw.
    crown = 1.2
    chin = idn.head_aspect - 0.2 + 0.2 * jaw - 0.03 * a["AU17"]
    t = np.linspace(np.pi, 2 * np.pi, 24, dtype=np.float32)
    upper = np.stack([np.cos(t), crown * np.sin(t)], axis=1)
    t = np.linspace(0.0, np.pi, 25, dtype=np.float32)[1:-1]
    narrowing = 1.0 - (1.0 - idn.jaw_width) * np.sin(t) ** 2
    lower = np.stack([np.cos(t) * narrowing, chin * np.sin(t) ** 1.2], axis=1)
    g.add("head", np.concatenate([upper, lower]), 0.0)
    g.add("neck", np.array([[-0.42, 0.5], [0.42, 0.5], [0.5, 3.2], [-0.5, 3.2]]), 0.0)
    for s, side in ((-1, "l"), (1, "r")):
        g.add(f"ear_{side}", _ellipse(s * 0.98, idn.eye_y + 0.22, 0.11, 0.22, 12), 0.0)

    vis = {
        "glabella": max(0.0, a["AU4"] - 0.15),
        "forehead": max(0.0, max(a["AU1"], a["AU2"]) - 0.2),
        "nose_wrinkle": a["AU9"],
        "nasolabial": min(1.0, 0.2 + 0.7 * a["AU12"] + 0.7 * a["AU10"] + 0.5 * a["AU9"] + 0.3 * a["AU6"]),
        "cheek": a["AU6"],
        "chin": a["AU17"],
        "dimple": a["AU14"],
    }

    # Eyes: AU5 widens (upper lid up), AU7 and AU6 narrow from below, blinks close the upper lid.
    h_lo = idn.eye_h * 0.42 * (1 - 0.5 * a["AU7"] - 0.45 * a["AU6"] + 0.15 * a["AU5"])
    h_up = (
        idn.eye_h * 0.62 * (1 + 0.6 * a["AU5"] - 0.35 * a["AU7"] - 0.15 * a["AU6"] - 0.2 * a["AU9"] - 0.15 * a["AU4"])
    )
    h_up = h_up * (1 - blink) - 0.8 * h_lo * blink
    u = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    for s, side in ((-1, "l"), (1, "r")):
        x = s * (idn.eye_dx - idn.eye_w / 2 + idn.eye_w * u)
        arch = np.sin(np.pi * u).clip(0.0, 1.0)
        g.add(f"eye_up_{side}", np.stack([x, idn.eye_y - h_up * arch**0.8], 1), 0.6)
        g.add(f"eye_lo_{side}", np.stack([x, idn.eye_y + (h_lo - 0.02 * a["AU6"]) * arch], 1), 0.6)
        r = idn.eye_h * 0.5
        g.add(
            f"iris_{side}",
            _ellipse(s * idn.eye_dx + gaze[0] * idn.eye_w * 0.15, idn.eye_y + gaze[1] * r * 0.3, r, r, 16),
            0.7,
        )
        g.add(
            f"pupil_{side}",
            _ellipse(
                s * idn.eye_dx + gaze[0] * idn.eye_w * 0.15, idn.eye_y + gaze[1] * r * 0.3, r * 0.45, r * 0.45, 12
            ),
            0.7,
        )

    # Brows: AU1 lifts the inner end, AU2 the outer, AU4 lowers and draws them together.
    base = idn.eye_y - idn.brow_gap
    for s, side in ((-1, "l"), (1, "r")):
        inner = np.array(
            [
                s * (idn.eye_dx - idn.eye_w * 0.6 - 0.05 * a["AU4"]),
                base - 0.13 * a["AU1"] + 0.1 * a["AU4"] + 0.03 * a["AU9"],
            ]
        )
        mid = np.array([s * (idn.eye_dx + 0.03), base - 0.05 - 0.06 * a["AU1"] - 0.08 * a["AU2"] + 0.065 * a["AU4"]])
        outer = np.array(
            [s * (idn.eye_dx + idn.eye_w * 0.8), base + 0.02 - 0.13 * a["AU2"] + 0.04 * a["AU4"] + 0.02 * a["AU1"]]
        )
        centre = _quad(inner, mid, outer, 9)
        half = (idn.brow_thick / 2) * np.linspace(1.0, 0.55, 9, dtype=np.float32)[:, None]
        g.add(f"brow_{side}", np.concatenate([centre - [0, 1] * half, (centre + [0, 1] * half)[::-1]]), 0.6)
    g.add("brow_base", np.array([[0.0, base]]), 0.6)

    # Nose: AU9 and AU10 lift and flare the nostrils.
    y_n = idn.eye_y + idn.nose_len + 0.02 - 0.04 * a["AU9"] - 0.02 * a["AU10"]
    flare = 1 + 0.2 * a["AU9"]
    g.add(
        "bridge", np.array([[0.07, idn.eye_y + 0.02], [0.09, idn.eye_y + idn.nose_len * 0.5], [0.12, y_n - 0.1]]), 0.9
    )
    for s, side in ((-1, "l"), (1, "r")):
        g.add(f"nostril_{side}", _ellipse(s * idn.nose_w * 0.45 * flare, y_n, 0.055, 0.026, 10), 1.0)
        g.add(
            f"ala_{side}",
            _quad(
                np.array([s * idn.nose_w * 0.45, y_n - 0.12]),
                np.array([s * idn.nose_w * flare, y_n - 0.01]),
                np.array([s * idn.nose_w * 0.55, y_n + 0.035]),
                7,
            ),
            1.0,
        )
    g.add("tip_shadow", _ellipse(0.0, y_n + 0.035, idn.nose_w * 0.55, 0.03, 12), 1.0)

    # Mouth: AU12 pulls the corners up and out, AU15 down, AU20 sideways, AU23 narrows and thins
    # the lips, AU10 lifts the upper lip, AU17 pushes the lower lip up, AU14 dimples the right
    # corner; speech rounds and opens the lips, bilabials close them.
    mw = idn.mouth_w * (1 + 0.22 * a["AU12"] + 0.28 * a["AU20"] - 0.18 * a["AU23"] - 0.28 * rounding + 0.05 * jaw)
    yc = idn.mouth_y - 0.11 * a["AU12"] + 0.09 * a["AU15"] + 0.02 * a["AU20"] + 0.02 * a["AU17"]
    corner_y = {-1: yc, 1: yc - 0.06 * a["AU14"]}
    corner_x = {-1: -mw, 1: mw + 0.03 * a["AU14"]}
    thin = 1 - 0.55 * a["AU23"] - 0.3 * a["AU20"]
    thick = 1 + 0.3 * rounding
    y_ui = idn.mouth_y - 0.05 * a["AU10"] - 0.02 * a["AU17"]
    aperture = max(
        0.0,
        (0.22 * jaw + 0.035 * a["AU10"] + 0.03 * a["AU12"] + 0.03 * a["AU20"]) * (1 - closure) * (1 - 0.6 * a["AU23"]),
    )
    y_li = y_ui + aperture
    y_uo = y_ui - idn.lip_upper * thin * thick - 0.015 * a["AU10"]
    y_lo = y_li + idn.lip_lower * thin * thick - 0.02 * a["AU17"]
    xs = np.linspace(-1.0, 1.0, 15, dtype=np.float32)

    def lip(y_mid: float, shape: float, inset: float, bow: float = 0.0) -> np.ndarray:
        side = np.where(xs < 0, -1, 1)
        cx = np.where(xs < 0, corner_x[-1], corner_x[1]) * inset
        cy = np.where(xs < 0, corner_y[-1], corner_y[1])
        w = np.abs(xs) ** shape
        y = (
            y_mid
            + (cy - y_mid) * w
            - bow * np.exp(-(((np.abs(xs) - 0.3) / 0.15) ** 2))
            + bow * np.exp(-((xs / 0.08) ** 2))
        )
        return np.stack([side * np.abs(xs) * np.abs(cx), y], 1)

    upper_outer = lip(y_uo, 1.6, 1.0, bow=0.012)
    lower_outer = lip(y_lo, 2.2, 1.0)
    upper_inner = lip(y_ui, 2.0, 0.92)
    lower_inner = lip(y_li, 2.0 - 0.6 * rounding, 0.92)
    g.add("lips", np.concatenate([upper_outer, lower_outer[::-1]]), 0.8)
    g.add("aperture", np.concatenate([upper_inner, lower_inner[::-1]]), 0.8)
    teeth_h = np.minimum(0.075, 0.65 * (lower_inner[:, 1] - upper_inner[:, 1]))
    g.add("teeth", np.concatenate([upper_inner, (upper_inner + np.stack([0 * teeth_h, teeth_h], 1))[::-1]]), 0.8)
    g.add("lip_line", upper_inner, 0.8)
    vis["aperture"] = aperture
    for s, side in ((-1, "l"), (1, "r")):
        start = np.array([s * idn.nose_w * 1.05, y_n - 0.05])
        end = np.array([corner_x[s] + s * 0.07, corner_y[s] + 0.03])
        g.add(f"fold_{side}", _quad(start, (start + end) / 2 + [s * 0.07, 0.0], end, 7), 0.5)
        g.add(
            f"cheek_{side}", _ellipse(s * (idn.eye_dx + 0.05), idn.eye_y + 0.36 - 0.07 * a["AU6"], 0.2, 0.11, 16), 0.4
        )
        x0 = s * (idn.eye_dx + idn.eye_w * 0.55)
        g.add(
            f"crow_{side}",
            np.array(
                [
                    [x0, idn.eye_y - 0.02],
                    [x0 + s * 0.09, idn.eye_y - 0.05],
                    [x0, idn.eye_y + 0.01],
                    [x0 + s * 0.09, idn.eye_y + 0.05],
                ]
            ),
            0.5,
        )
        g.add(
            f"bag_{side}",
            _quad(
                np.array([s * (idn.eye_dx - idn.eye_w * 0.35), idn.eye_y + h_lo + 0.04]),
                np.array([s * idn.eye_dx, idn.eye_y + h_lo + 0.07 - 0.03 * a["AU6"]]),
                np.array([s * (idn.eye_dx + idn.eye_w * 0.4), idn.eye_y + h_lo + 0.035]),
                7,
            ),
            0.6,
        )
    g.add(
        "chin_boss",
        _quad(np.array([-0.13, y_lo + 0.1]), np.array([0.0, y_lo + 0.06]), np.array([0.13, y_lo + 0.1]), 7),
        0.7,
    )
    g.add("dimple", np.array([[corner_x[1] + 0.04, corner_y[1] - 0.04], [corner_x[1] + 0.06, corner_y[1] + 0.03]]), 0.7)
    return g, vis


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
        idn = self.idn
        g, vis = face_geometry(idn, aus, speech, blink, gaze)
        pixels = _px_all(g, pose)
        P = pixels.__getitem__
        lw = max(1, round(pose.scale * 0.022))  # crease line width, px

        def poly(name: str, colour: tuple[int, ...]) -> None:
            cv2.fillPoly(img, [P(name)], colour, _AA, _SHIFT)

        def line(name: str, colour: tuple[int, ...], width: int = lw, closed: bool = False) -> None:
            cv2.polylines(img, [P(name)], closed, colour, width, _AA, _SHIFT)

        # torso, hair behind the head, neck, ears, head
        torso = _ellipse(0.0, 3.2, 2.7, 1.5, 24)
        cv2.fillPoly(img, [_px(torso, 0.0, pose)], idn.shirt, _AA, _SHIFT)
        hair_back = {"long": _ellipse(0.0, 0.35, 1.22, 1.6, 24), "bun": _ellipse(0.0, -1.25, 0.42, 0.35, 16)}.get(
            idn.hair_style
        )
        if hair_back is not None:
            cv2.fillPoly(img, [_px(hair_back, 0.0, pose)], idn.hair_colour, _AA, _SHIFT)
        poly("neck", self.neck)
        poly("ear_l", self.ear)
        poly("ear_r", self.ear)
        poly("head", self.skin)
        if idn.hair_style != "bald":
            t = np.linspace(np.pi + 0.12, 2 * np.pi - 0.12, 20, dtype=np.float32)
            cap_top = np.stack([1.04 * np.cos(t), 1.25 * np.sin(t)], 1)
            fringe = _quad(
                cap_top[-1] * [1, 0.55] + [0, -0.05], np.array([0.1, -0.82]), cap_top[0] * [1, 0.55] + [0, -0.05], 9
            )
            cv2.fillPoly(img, [_px(np.concatenate([cap_top, fringe]), 0.0, pose)], idn.hair_colour, _AA, _SHIFT)

        # cheeks (AU6) and folds beneath the skin features
        if vis["cheek"] > 0.05:
            blush = _mix(self.skin, 0.35 * vis["cheek"], self.blush)
            poly("cheek_l", blush)
            poly("cheek_r", blush)
        fold = _mix(self.skin, vis["nasolabial"], self.crease)
        line("fold_l", fold)
        line("fold_r", fold)

        # eyes: white, iris, pupil, then lids cover what lies outside the eye opening
        for side in ("l", "r"):
            up, lo = g.parts[f"eye_up_{side}"], g.parts[f"eye_lo_{side}"]
            cv2.fillPoly(img, [_px(np.concatenate([up, lo[::-1]]), 0.6, pose)], (225, 228, 232), _AA, _SHIFT)
            poly(f"iris_{side}", idn.iris)
            poly(f"pupil_{side}", (15, 15, 20))
            lid_h = idn.eye_h * 1.2
            cv2.fillPoly(img, [_px(np.concatenate([up, (up - [0, lid_h])[::-1]]), 0.6, pose)], self.skin, _AA, _SHIFT)
            cv2.fillPoly(img, [_px(np.concatenate([lo, (lo + [0, lid_h])[::-1]]), 0.6, pose)], self.skin, _AA, _SHIFT)
            cv2.polylines(img, [_px(up, 0.6, pose)], False, (25, 20, 20), lw + 1, _AA, _SHIFT)
            cv2.polylines(img, [_px(up - [0, idn.eye_h * 0.35], 0.6, pose)], False, self.crease, lw, _AA, _SHIFT)
            cv2.polylines(img, [_px(lo, 0.6, pose)], False, self.shade, lw, _AA, _SHIFT)
            line(f"bag_{side}", _mix(self.skin, 0.3 + 0.5 * vis["cheek"], self.crease))
            if vis["cheek"] > 0.25:
                line(f"crow_{side}", _mix(self.skin, vis["cheek"], self.crease))

        # brows and the creases they make
        brow_colour = _mix(idn.hair_colour, 0.25) if idn.hair_style != "bald" else _mix(self.skin, 0.6)
        poly("brow_l", brow_colour)
        poly("brow_r", brow_colour)
        base = float(g.parts["brow_base"][0, 1])
        if vis["glabella"] > 0.05:
            col = _mix(self.skin, min(1.0, vis["glabella"] * 1.3), self.crease)
            for x in (-0.05, 0.05):
                cv2.polylines(
                    img,
                    [_px(np.array([[x, base + 0.03], [x * 0.8, base + 0.14]]), 0.6, pose)],
                    False,
                    col,
                    lw,
                    _AA,
                    _SHIFT,
                )
        if vis["forehead"] > 0.05:
            col = _mix(self.skin, min(1.0, vis["forehead"] * 1.2), self.crease)
            for k in range(3):
                y = base - 0.2 - 0.08 * k
                arc = _quad(np.array([-0.4, y + 0.02]), np.array([0.0, y - 0.02]), np.array([0.4, y + 0.02]), 9)
                cv2.polylines(img, [_px(arc, 0.5, pose)], False, col, lw, _AA, _SHIFT)

        # nose
        line("bridge", self.shade, lw + 1)
        poly("tip_shadow", self.shade)
        line("ala_l", self.crease)
        line("ala_r", self.crease)
        poly("nostril_l", self.dark)
        poly("nostril_r", self.dark)
        if vis["nose_wrinkle"] > 0.1:
            col = _mix(self.skin, vis["nose_wrinkle"], self.crease)
            y0 = float(g.parts["bridge"][0, 1])
            for k in range(3):
                y = y0 + 0.05 + 0.045 * k
                cv2.polylines(
                    img,
                    [_px(np.array([[-0.09, y + 0.01], [0.0, y - 0.01], [0.09, y + 0.01]]), 0.9, pose)],
                    False,
                    col,
                    lw,
                    _AA,
                    _SHIFT,
                )

        # mouth
        poly("lips", idn.lip_colour)
        if vis["aperture"] > 0.004:
            poly("aperture", (35, 25, 45))
            poly("teeth", (215, 222, 228))
        line("lip_line", _mix(idn.lip_colour, 0.55), lw)
        if vis["chin"] > 0.1:
            line("chin_boss", _mix(self.skin, vis["chin"], self.crease))
        if vis["dimple"] > 0.1:
            line("dimple", _mix(self.skin, vis["dimple"], self.crease))

        if idn.glasses:
            frame_col = (30, 30, 35)
            for s in (-1, 1):
                rim = _ellipse(s * idn.eye_dx, idn.eye_y + 0.01, idn.eye_w * 0.85, idn.eye_h * 1.75, 20)
                cv2.polylines(img, [_px(rim, 0.6, pose)], True, frame_col, lw + 1, _AA, _SHIFT)
                temple = np.array(
                    [[s * (idn.eye_dx + idn.eye_w * 0.85), idn.eye_y - 0.02], [s * 0.98, idn.eye_y + 0.02]]
                )
                cv2.polylines(img, [_px(temple, 0.3, pose)], False, frame_col, lw + 1, _AA, _SHIFT)
            bridge = np.array(
                [
                    [-(idn.eye_dx - idn.eye_w * 0.85), idn.eye_y - 0.02],
                    [0.0, idn.eye_y - 0.05],
                    [idn.eye_dx - idn.eye_w * 0.85, idn.eye_y - 0.02],
                ]
            )
            cv2.polylines(img, [_px(bridge, 0.8, pose)], False, frame_col, lw + 1, _AA, _SHIFT)
        return g


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
