"""The face's parts in face units for one frame: identity + action units + speech → named point sets.

Face units: 1 = half the face width, origin between the eyes' level and the nose, y down. Each AU
moves what FACS says it moves, written as small tables (`MOVES`, `LIP_CONTOURS`) that the part
builders read, the way torchvision's MobileNetV2 reads its layer table. `fedfer.synth.face` maps the
parts to pixels and draws them.
"""

from __future__ import annotations

import functools

import numpy as np

from fedfer.synth.actors import Identity
from fedfer.synth.expression import AU_INDEX


@functools.cache
def _quad_basis(n: int) -> np.ndarray:
    u = np.linspace(0.0, 1.0, n, dtype=np.float32)[:, None]
    return np.stack([(1 - u) * (1 - 2 * u), 4 * u * (1 - u), u * (2 * u - 1)])  # (3, n, 1)


def quad(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int) -> np.ndarray:
    """(n, 2) points on the parabola through p0, p1 (middle) and p2."""
    b = _quad_basis(n)
    return p0 * b[0] + p1 * b[1] + p2 * b[2]


@functools.cache
def _unit_circle(n: int) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False, dtype=np.float32)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 20) -> np.ndarray:
    return _unit_circle(n) * np.array([ax, ay], np.float32) + np.array([cx, cy], np.float32)


class FaceGeometry:
    """Named point sets (face units) of one frame's face; built by `face_geometry`."""

    def __init__(self) -> None:
        self.parts: dict[str, np.ndarray] = {}  # name → (n, 2) float32
        self.depth: dict[str, float] = {}  # name → depth for yaw / pitch parallax

    def add(self, name: str, points: np.ndarray, depth: float) -> None:
        self.parts[name] = np.asarray(points, np.float32)
        self.depth[name] = depth


# What moves what (FACS), one small table per quantity, as torchvision's MobileNetV2 writes its layers:
# a quantity is its base (see `face_geometry`) plus, in table order, weight × driver. Drivers are the AU
# intensities and the speech channels: "jaw" (AU26 and speech share the jaw), "rounding".
MOVES: dict[str, tuple[tuple[str, float], ...]] = {
    "chin": (("jaw", 0.2), ("AU17", -0.03)),  # the chin drops with the jaw, AU17 pushes it up
    "lower_lid": (("AU7", -0.5), ("AU6", -0.45), ("AU5", 0.15)),  # AU7 and AU6 narrow the eye from below
    "upper_lid": (("AU5", 0.6), ("AU7", -0.35), ("AU6", -0.15), ("AU9", -0.2), ("AU4", -0.15)),  # AU5 widens
    "brow_inner_x": (("AU4", -0.05),),  # AU4 draws the brows together
    "brow_inner_y": (("AU1", -0.13), ("AU4", 0.1), ("AU9", 0.03)),  # AU1 lifts the inner end, AU4 lowers it
    "brow_mid_y": (("AU1", -0.06), ("AU2", -0.08), ("AU4", 0.065)),
    "brow_outer_y": (("AU2", -0.13), ("AU4", 0.04), ("AU1", 0.02)),  # AU2 lifts the outer end
    "nostril_y": (("AU9", -0.04), ("AU10", -0.02)),  # AU9 and AU10 lift the nostrils
    # AU12 pulls the corners up and out, AU15 down, AU20 sideways, AU23 narrows and thins the lips,
    # AU10 lifts the upper lip, AU17 pushes the lower lip up; speech rounds and opens the lips.
    "mouth_width": (("AU12", 0.22), ("AU20", 0.28), ("AU23", -0.18), ("rounding", -0.28), ("jaw", 0.05)),
    "mouth_corner_y": (("AU12", -0.11), ("AU15", 0.09), ("AU20", 0.02), ("AU17", 0.02)),
    "lip_thickness": (("AU23", -0.55), ("AU20", -0.3)),
    "upper_lip_y": (("AU10", -0.05), ("AU17", -0.02)),
    "upper_lip_top": (("AU10", -0.015),),
    "lower_lip_bottom": (("AU17", -0.02),),
    "opening": (("jaw", 0.22), ("AU10", 0.035), ("AU12", 0.03), ("AU20", 0.03)),
    "nasolabial": (("AU12", 0.7), ("AU10", 0.7), ("AU9", 0.5), ("AU6", 0.3)),
}
SIDES = ((-1, "l"), (1, "r"))  # the face's left and right, as the sign of x


def _moved(drivers: dict[str, float], quantity: str, base: float) -> float:
    """`base` moved by the drivers of `MOVES[quantity]`, summed in table order."""
    value = base
    for driver, weight in MOVES[quantity]:
        value += weight * drivers[driver]
    return value


def face_geometry(
    idn: Identity, aus: np.ndarray, speech: np.ndarray, blink: float, gaze: tuple[float, float] = (0.0, 0.0)
) -> tuple[FaceGeometry, dict[str, float]]:
    """Face parts for AU intensities `aus` (N_AUS,), speech (jaw, round, close) and eyelid closure.

    Returns the geometry and the scalar visibilities of creases (wrinkle darkness, 0-1) that the
    drawing uses. Each AU moves what FACS says it moves (`MOVES`).
    """
    a = {name: float(aus[i]) for name, i in AU_INDEX.items()}
    jaw_speech, rounding, closure = (float(v) for v in speech)
    a["jaw"] = min(1.0, 0.9 * a["AU26"] + jaw_speech)  # AU26 and speech share the jaw
    a["rounding"] = rounding
    g = FaceGeometry()
    _add_head(g, idn, a)
    vis = {
        "glabella": max(0.0, a["AU4"] - 0.15),
        "forehead": max(0.0, max(a["AU1"], a["AU2"]) - 0.2),
        "nose_wrinkle": a["AU9"],
        "nasolabial": min(1.0, _moved(a, "nasolabial", 0.2)),
        "cheek": a["AU6"],
        "chin": a["AU17"],
        "dimple": a["AU14"],
    }
    h_lo = _add_eyes(g, idn, a, blink, gaze)
    _add_brows(g, idn, a)
    y_n = _add_nose(g, idn, a)
    corners, y_lo, vis["aperture"] = _add_mouth(g, idn, a, closure)
    _add_folds(g, idn, a, h_lo, y_n, corners, y_lo)
    return g, vis


def _add_head(g: FaceGeometry, idn: Identity, a: dict[str, float]) -> None:
    """Head outline: upper half-ellipse to the crown, lower half narrowing to the chin; neck and ears."""
    crown = 1.2
    chin = _moved(a, "chin", idn.head_aspect - 0.2)
    t = np.linspace(np.pi, 2 * np.pi, 24, dtype=np.float32)
    upper = np.stack([np.cos(t), crown * np.sin(t)], axis=1)
    t = np.linspace(0.0, np.pi, 25, dtype=np.float32)[1:-1]
    narrowing = 1.0 - (1.0 - idn.jaw_width) * np.sin(t) ** 2
    lower = np.stack([np.cos(t) * narrowing, chin * np.sin(t) ** 1.2], axis=1)
    g.add("head", np.concatenate([upper, lower]), 0.0)
    g.add("neck", np.array([[-0.42, 0.5], [0.42, 0.5], [0.5, 3.2], [-0.5, 3.2]]), 0.0)
    for s, side in SIDES:
        g.add(f"ear_{side}", ellipse(s * 0.98, idn.eye_y + 0.22, 0.11, 0.22, 12), 0.0)


def _add_eyes(g: FaceGeometry, idn: Identity, a: dict[str, float], blink: float, gaze: tuple[float, float]) -> float:
    """Lids (blinks close the upper one), iris and pupil; returns the lower lid's height (the bags sit under it)."""
    h_lo = idn.eye_h * 0.42 * _moved(a, "lower_lid", 1)
    h_up = idn.eye_h * 0.62 * _moved(a, "upper_lid", 1)
    h_up = h_up * (1 - blink) - 0.8 * h_lo * blink
    u = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    for s, side in SIDES:
        x = s * (idn.eye_dx - idn.eye_w / 2 + idn.eye_w * u)
        arch = np.sin(np.pi * u).clip(0.0, 1.0)
        g.add(f"eye_up_{side}", np.stack([x, idn.eye_y - h_up * arch**0.8], 1), 0.6)
        g.add(f"eye_lo_{side}", np.stack([x, idn.eye_y + (h_lo - 0.02 * a["AU6"]) * arch], 1), 0.6)
        r = idn.eye_h * 0.5
        cx, cy = s * idn.eye_dx + gaze[0] * idn.eye_w * 0.15, idn.eye_y + gaze[1] * r * 0.3
        g.add(f"iris_{side}", ellipse(cx, cy, r, r, 16), 0.7)
        g.add(f"pupil_{side}", ellipse(cx, cy, r * 0.45, r * 0.45, 12), 0.7)
    return h_lo


def _add_brows(g: FaceGeometry, idn: Identity, a: dict[str, float]) -> None:
    """Each brow a band along a parabola through its inner end, middle and outer end, thinning outwards."""
    base = idn.eye_y - idn.brow_gap
    for s, side in SIDES:
        inner = np.array([s * _moved(a, "brow_inner_x", idn.eye_dx - idn.eye_w * 0.6), _moved(a, "brow_inner_y", base)])
        mid = np.array([s * (idn.eye_dx + 0.03), _moved(a, "brow_mid_y", base - 0.05)])
        outer = np.array([s * (idn.eye_dx + idn.eye_w * 0.8), _moved(a, "brow_outer_y", base + 0.02)])
        centre = quad(inner, mid, outer, 9)
        half = (idn.brow_thick / 2) * np.linspace(1.0, 0.55, 9, dtype=np.float32)[:, None]
        g.add(f"brow_{side}", np.concatenate([centre - [0, 1] * half, (centre + [0, 1] * half)[::-1]]), 0.6)
    g.add("brow_base", np.array([[0.0, base]]), 0.6)


def _add_nose(g: FaceGeometry, idn: Identity, a: dict[str, float]) -> float:
    """Bridge, nostrils (AU9 flares them), alae and the tip's shadow; returns the nostrils' height."""
    y_n = _moved(a, "nostril_y", idn.eye_y + idn.nose_len + 0.02)
    flare = 1 + 0.2 * a["AU9"]
    g.add(
        "bridge", np.array([[0.07, idn.eye_y + 0.02], [0.09, idn.eye_y + idn.nose_len * 0.5], [0.12, y_n - 0.1]]), 0.9
    )
    for s, side in SIDES:
        g.add(f"nostril_{side}", ellipse(s * idn.nose_w * 0.45 * flare, y_n, 0.055, 0.026, 10), 1.0)
        ala = (
            np.array([s * idn.nose_w * 0.45, y_n - 0.12]),
            np.array([s * idn.nose_w * flare, y_n - 0.01]),
            np.array([s * idn.nose_w * 0.55, y_n + 0.035]),
        )
        g.add(f"ala_{side}", quad(*ala, 7), 1.0)
    g.add("tip_shadow", ellipse(0.0, y_n + 0.035, idn.nose_w * 0.55, 0.03, 12), 1.0)
    return y_n


# The four lip contours: (name, height (see `_add_mouth`), exponent of the rise to the corners, inset
# of the corners, Cupid's bow). Outer contours reach the corners, inner ones stop short of them.
LIP_CONTOURS = (
    ("upper_outer", "y_uo", 1.6, 1.0, 0.012),
    ("lower_outer", "y_lo", 2.2, 1.0, 0.0),
    ("upper_inner", "y_ui", 2.0, 0.92, 0.0),
    ("lower_inner", "y_li", 2.0, 0.92, 0.0),  # speech rounding flattens it: exponent − 0.6 × rounding
)


def _add_mouth(
    g: FaceGeometry, idn: Identity, a: dict[str, float], closure: float
) -> tuple[dict[int, tuple[float, float]], float, float]:
    """Lips, the opening, teeth and the lip line; AU14 dimples the right corner, bilabials (`closure`)
    close the lips. Returns the corners {side: (x, y)}, the lower lip's bottom and the opening."""
    mw = idn.mouth_w * _moved(a, "mouth_width", 1)
    yc = _moved(a, "mouth_corner_y", idn.mouth_y)
    corners = {-1: (-mw, yc), 1: (mw + 0.03 * a["AU14"], yc - 0.06 * a["AU14"])}
    thin, thick = _moved(a, "lip_thickness", 1), 1 + 0.3 * a["rounding"]
    y = {"y_ui": _moved(a, "upper_lip_y", idn.mouth_y)}
    aperture = max(0.0, _moved(a, "opening", 0.0) * (1 - closure) * (1 - 0.6 * a["AU23"]))
    y["y_li"] = y["y_ui"] + aperture
    y["y_uo"] = _moved(a, "upper_lip_top", y["y_ui"] - idn.lip_upper * thin * thick)
    y["y_lo"] = _moved(a, "lower_lip_bottom", y["y_li"] + idn.lip_lower * thin * thick)
    lips = {}
    for name, height, shape, inset, bow in LIP_CONTOURS:
        shape = shape - 0.6 * a["rounding"] if name == "lower_inner" else shape
        lips[name] = _lip(corners, y[height], shape, inset, bow)
    upper_inner, lower_inner = lips["upper_inner"], lips["lower_inner"]
    g.add("lips", np.concatenate([lips["upper_outer"], lips["lower_outer"][::-1]]), 0.8)
    g.add("aperture", np.concatenate([upper_inner, lower_inner[::-1]]), 0.8)
    teeth_h = np.minimum(0.075, 0.65 * (lower_inner[:, 1] - upper_inner[:, 1]))
    g.add("teeth", np.concatenate([upper_inner, (upper_inner + np.stack([0 * teeth_h, teeth_h], 1))[::-1]]), 0.8)
    g.add("lip_line", upper_inner, 0.8)
    return corners, y["y_lo"], aperture


def _lip(corners: dict[int, tuple[float, float]], y_mid: float, shape: float, inset: float, bow: float) -> np.ndarray:
    """(15, 2) points of one lip contour from the left corner to the right, through `y_mid` at the centre."""
    xs = np.linspace(-1.0, 1.0, 15, dtype=np.float32)
    side = np.where(xs < 0, -1, 1)
    cx = np.where(xs < 0, corners[-1][0], corners[1][0]) * inset
    cy = np.where(xs < 0, corners[-1][1], corners[1][1])
    w = np.abs(xs) ** shape
    y = y_mid + (cy - y_mid) * w - bow * np.exp(-(((np.abs(xs) - 0.3) / 0.15) ** 2)) + bow * np.exp(-((xs / 0.08) ** 2))
    return np.stack([side * np.abs(xs) * np.abs(cx), y], 1)


def _add_folds(
    g: FaceGeometry,
    idn: Identity,
    a: dict[str, float],
    h_lo: float,
    y_n: float,
    corners: dict[int, tuple[float, float]],
    y_lo: float,
) -> None:
    """Where creases show: nasolabial folds, cheeks (AU6), crow's feet, bags under the eyes, chin, dimple."""
    for s, side in SIDES:
        start = np.array([s * idn.nose_w * 1.05, y_n - 0.05])
        end = np.array([corners[s][0] + s * 0.07, corners[s][1] + 0.03])
        g.add(f"fold_{side}", quad(start, (start + end) / 2 + [s * 0.07, 0.0], end, 7), 0.5)
        g.add(f"cheek_{side}", ellipse(s * (idn.eye_dx + 0.05), idn.eye_y + 0.36 - 0.07 * a["AU6"], 0.2, 0.11, 16), 0.4)
        x0 = s * (idn.eye_dx + idn.eye_w * 0.55)
        crow = [[x0, -0.02], [x0 + s * 0.09, -0.05], [x0, 0.01], [x0 + s * 0.09, 0.05]]
        g.add(f"crow_{side}", np.array([[x, idn.eye_y + dy] for x, dy in crow]), 0.5)
        bag = (
            np.array([s * (idn.eye_dx - idn.eye_w * 0.35), idn.eye_y + h_lo + 0.04]),
            np.array([s * idn.eye_dx, idn.eye_y + h_lo + 0.07 - 0.03 * a["AU6"]]),
            np.array([s * (idn.eye_dx + idn.eye_w * 0.4), idn.eye_y + h_lo + 0.035]),
        )
        g.add(f"bag_{side}", quad(*bag, 7), 0.6)
    g.add(
        "chin_boss",
        quad(np.array([-0.13, y_lo + 0.1]), np.array([0.0, y_lo + 0.06]), np.array([0.13, y_lo + 0.1]), 7),
        0.7,
    )
    right = corners[1]
    g.add("dimple", np.array([[right[0] + 0.04, right[1] - 0.04], [right[0] + 0.06, right[1] + 0.03]]), 0.7)
