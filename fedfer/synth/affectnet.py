"""Writes the AffectNet-shaped still-image corpus in the real layout (`fedfer.data.datasets.affectnet`).

    Manually_Annotated_Images/<n>/<56 hex>.jpg
    Manually_Annotated_file_lists/training.csv     header + rows
    Manually_Annotated_file_lists/validation.csv   rows only (no header row, as in copies of the release)
    _truth/                                        see fedfer.synth.truth

Columns: subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks
("x;y;..." for 68 points), expression (0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust,
6 Anger, 7 Contempt, 8 None, 9 Uncertain, 10 No-Face), valence, arousal (-2 where undefined).

Every image is a new identity (thousands, none of them a video actor), at the apex of an
expression with the mouth at rest (no speech), framed tightly under photo lighting: the domain
shift that makes an image model g() transfer imperfectly to video frames. The expression code is
one simulated annotator's vote on what the image shows, as AffectNet has one annotator per image.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np

from fedfer.data.datasets.affectnet import CODES, COLUMNS, IMAGES_DIR, LISTS_DIR
from fedfer.io import atomic_write_text
from fedfer.synth.actors import BLEND_STREAM, RESTING_AUS, draw_actor
from fedfer.synth.expression import AUS, au_vector
from fedfer.synth.presets import AffectNetPreset, WorldPreset
from fedfer.synth.raters import expected_votes, face_evidence, vote
from fedfer.synth.render import StillPlan, parallel_map, render_still
from fedfer.synth.takes import seed_for
from fedfer.synth.truth import write_truth

CORPUS_KEY = 2
EXPRESSIONS = tuple(CODES.values())  # the 8 annotated expressions, in code order
NONE, UNCERTAIN, NO_FACE = 8, 9, 10
# Valence and arousal (-1..1) of each expression at full strength; an image's values mix these by
# its expressed mixture.
VALENCE = {"NEU": 0.0, "HAP": 0.75, "SAD": -0.65, "SUR": 0.2, "FEA": -0.55, "DIS": -0.65, "ANG": -0.6, "CON": -0.4}
AROUSAL = {"NEU": 0.0, "HAP": 0.45, "SAD": -0.3, "SUR": 0.7, "FEA": 0.75, "DIS": 0.35, "ANG": 0.7, "CON": 0.15}


@dataclass(frozen=True)
class Still:
    plan: StillPlan
    intended: int  # AffectNet code the identity was asked to show
    code: int  # the annotator's label
    intensity: float
    expressed: np.ndarray  # (8,) expected annotator shares over EXPRESSIONS
    valence: float
    arousal: float
    identity_seed: int


def _still(i: int, intended: int, preset: AffectNetPreset, seed: int) -> Still:
    rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 1, i))
    folder = 1 + i // preset.images_per_folder
    name = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()[:56]
    rel = f"{IMAGES_DIR}/{folder}/{name}.jpg"
    cam = preset.camera
    pose = np.array(
        [
            rng.uniform(*cam.centre_x) * cam.width,
            rng.uniform(*cam.centre_y) * cam.height,
            rng.uniform(*cam.face_scale),
            rng.normal(0, 0.08),
            rng.normal(0, 0.3),
            rng.normal(0, 0.2),
        ],
        np.float32,
    )
    identity_seed = seed_for(seed, CORPUS_KEY, 2, i)
    actor = draw_actor(
        np.random.default_rng(identity_seed), f"img{i}", str(rng.choice(["Male", "Female"])), preset.population
    )
    quality = int(rng.integers(60, 96))
    if intended == NO_FACE:
        plan = StillPlan(rel, None, cam, np.zeros(len(AUS), np.float32), pose, quality, int(rng.integers(2**31)))
        return Still(plan, intended, NO_FACE, 0.0, np.zeros(len(EXPRESSIONS)), -2.0, -2.0, identity_seed)
    if intended in (NONE, UNCERTAIN):  # an expression outside the 8, or one the annotator could not name
        aus = au_vector(
            {
                str(au): float(rng.uniform(0.2, 0.7))
                for au in rng.choice((*RESTING_AUS, "AU2", "AU20", "AU26"), 3, replace=False)
            }
        )
        intensity = 0.0
    else:
        emotion = CODES[intended]
        intensity = 0.0 if emotion == "NEU" else float(rng.uniform(*preset.intensity))
        display = actor.style.display(emotion, np.random.default_rng((seed_for(seed, CORPUS_KEY, 3, i), BLEND_STREAM)))
        aus = actor.style.resting_vector() + intensity * display
    aus = np.clip(aus, 0.0, 1.0).astype(np.float32)
    plan = StillPlan(rel, actor.identity, cam, aus, pose, quality, int(rng.integers(2**31)))
    annotator = preset.annotator
    evidence = face_evidence(aus, EXPRESSIONS)
    expressed = expected_votes(evidence, EXPRESSIONS, annotator)
    if intended in (NONE, UNCERTAIN):
        code = intended
        valence = arousal = -2.0
    else:
        code = int(
            vote(rng, evidence, EXPRESSIONS, 1, annotator.sharpness, annotator.neutral_threshold, annotator.bias_sd)[0]
        )
        valence = float(
            np.clip(sum(p * VALENCE[e] for e, p in zip(EXPRESSIONS, expressed)) + rng.normal(0, 0.1), -1, 1)
        )
        arousal = float(
            np.clip(sum(p * AROUSAL[e] for e, p in zip(EXPRESSIONS, expressed)) + rng.normal(0, 0.1), -1, 1)
        )
    return Still(plan, intended, code, intensity, expressed, valence, arousal, identity_seed)


def plan_stills(preset: AffectNetPreset, seed: int) -> tuple[list[Still], list[Still]]:
    """(training, validation) stills. Training intends codes in `train_mix` proportions;
    validation keeps drawing until each of the 8 expressions has `valid_per_class` *labels*
    (the real validation set is balanced by label)."""
    rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 0))
    codes = np.array(list(preset.train_mix))
    probs = np.array(list(preset.train_mix.values()), np.float64)
    intended = rng.choice(codes, size=preset.n_train, p=probs / probs.sum())
    train = [_still(i, int(c), preset, seed) for i, c in enumerate(intended)]
    need = {code: preset.valid_per_class for code in CODES}
    valid: list[Still] = []
    i = preset.n_train
    while any(need.values()):
        wanted = [c for c, n in need.items() if n > 0]
        still = _still(i, wanted[i % len(wanted)], preset, seed)
        i += 1
        if need.get(still.code, 0) > 0:
            need[still.code] -= 1
            valid.append(still)
        if i > preset.n_train + 50 * preset.valid_per_class * len(CODES):
            raise RuntimeError(
                "could not balance the AffectNet-shaped validation set; "
                "the rater model labels too few images of some class"
            )
    return train, valid


def _rows(stills: list[Still], boxes: dict[str, tuple]) -> list[str]:
    out = []
    for s in stills:
        (x, y, w, h), marks = boxes[s.plan.rel_path]
        lm = "" if marks is None else ";".join(f"{v:.2f}" for v in marks.reshape(-1))
        rel = s.plan.rel_path.split("/", 1)[1]
        out.append(f"{rel},{x},{y},{w},{h},{lm},{s.code},{s.valence:.6f},{s.arousal:.6f}")
    return out


def write_affectnet(root: Path, world: WorldPreset, seed: int, pool: Pool | None, progress: bool) -> dict:
    """Render every image (all re-rendered: cheap, and the box/landmarks come from rendering) and
    write the two lists and the truth sidecar; returns counts."""
    preset = world.affectnet
    train, valid = plan_stills(preset, seed)
    plans = [s.plan for s in train + valid]
    results = parallel_map(functools.partial(render_still, root=root), plans, pool, "affectnet images", progress)
    boxes = {p.rel_path: r for p, r in zip(plans, results)}
    lists = root / LISTS_DIR
    atomic_write_text(lists / "training.csv", "\n".join([",".join(COLUMNS), *_rows(train, boxes)]) + "\n")
    atomic_write_text(lists / "validation.csv", "\n".join(_rows(valid, boxes)) + "\n")
    truth = [
        {
            "image": s.plan.rel_path,
            "list": lst,
            "intended": s.intended,
            "expression": s.code,
            "intensity": s.intensity,
            "identity_seed": s.identity_seed,
            **{f"expressed_{e}": float(p) for e, p in zip(EXPRESSIONS, s.expressed)},
            **{f"au_{au}": float(v) for au, v in zip(AUS, s.plan.aus)},
        }
        for lst, group in (("training", train), ("validation", valid))
        for s in group
    ]
    write_truth(root, truth, {}, "one row per image; every image is its own identity (identity_seed redraws it).")
    return {"train_images": len(train), "valid_images": len(valid), "identities": len(train) + len(valid)}
