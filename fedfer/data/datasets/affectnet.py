"""AffectNet in its release layout → `StillImage` records, with the paper's train/dev/test protocol.

    root/Manually_Annotated_file_lists/training.csv     header row, then one row per image
    root/Manually_Annotated_file_lists/validation.csv   the same columns (a header row is optional:
                                                        some copies of the release have none)
    root/Manually_Annotated_Images/<subDirectory_filePath>

Columns: subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal. Expression codes: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear,
5 Disgust, 6 Anger, 7 Contempt, 8 None, 9 Uncertain, 10 No-Face. Rows whose expression is not in
the chosen 4- or 6-class task (Surprise, Contempt, None, Uncertain, No-Face; in the 4-class task
also Fear and Disgust) are dropped.

Protocol (Salman & Busso): the training list, down-sampled to at most 24,882 images per class
(seeded), is split 80/20 into train and dev (stratified by class, seeded); the official validation
list is the test set.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedfer.data.datasets import StillImage, task_classes

COLUMNS: tuple[str, ...] = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
CODES: dict[int, str] = {0: "NEU", 1: "HAP", 2: "SAD", 3: "SUR", 4: "FEA", 5: "DIS", 6: "ANG", 7: "CON"}
LISTS_DIR = "Manually_Annotated_file_lists"
IMAGES_DIR = "Manually_Annotated_Images"
IMAGES_PER_CLASS = 24_882  # the paper's cap on training images per class
_REMEDY = (
    "AffectNet is distributed on request (mohammadmahoor.com/affectnet); "
    "or render fedfer's AffectNet-shaped corpus with `fedfer synth`."
)


@dataclass(frozen=True)
class AffectNetSplits:
    """The paper's protocol: train and dev from the training list, test = the validation list."""

    train: list[StillImage]
    dev: list[StillImage]
    test: list[StillImage]
    classes: tuple[str, ...]


def read_list(root: str | Path, which: str, num_classes: int = 6, require_images: bool = True) -> list[StillImage]:
    """Rows of `training` or `validation` whose expression is in the task, as StillImage records."""
    if which not in ("training", "validation"):
        raise ValueError(f"AffectNet lists are 'training' and 'validation'; got {which!r}")
    root = Path(root)
    path = root / LISTS_DIR / f"{which}.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: file not found; expected AffectNet's {LISTS_DIR}/{which}.csv under {root}. {_REMEDY}"
        )
    classes = task_classes(num_classes)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if rows and rows[0] and rows[0][0] == COLUMNS[0]:
        header, rows = rows[0], rows[1:]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise ValueError(
                f"{path}: missing columns {', '.join(missing)} (header read: {header}); "
                f"expected {', '.join(COLUMNS)}. {_REMEDY}"
            )
    else:
        header = list(COLUMNS)  # a list without its header row: the release's column order
    col = {name: header.index(name) for name in COLUMNS}
    images: list[StillImage] = []
    missing_files: list[Path] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) < len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields, expected {len(header)}; the file looks truncated. {_REMEDY}"
            )
        try:
            code = int(row[col["expression"]])
            box = tuple(int(float(row[col[c]])) for c in ("face_x", "face_y", "face_width", "face_height"))
        except ValueError as err:
            raise ValueError(f"{path}, line {line}: not a number in expression/face box ({err}). {_REMEDY}") from err
        emotion = CODES.get(code)
        if emotion not in classes:
            continue
        image = root / IMAGES_DIR / row[col["subDirectory_filePath"]]
        if require_images and not image.is_file():
            missing_files.append(image)
        images.append(StillImage(image, classes.index(emotion), box))  # type: ignore[arg-type]
    if missing_files:
        raise FileNotFoundError(
            f"{path}: {len(missing_files)} listed images are missing, e.g. {missing_files[0]}; "
            f"copy {IMAGES_DIR}/ beside {LISTS_DIR}/, or pass require_images=False to read labels only."
        )
    return images


def _cap(images: list[StillImage], images_per_class: int, rng: np.random.Generator) -> list[StillImage]:
    """At most `images_per_class` images per class, chosen at random; list order otherwise kept."""
    keep: list[int] = []
    labels = np.array([im.label for im in images])
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        keep += list(idx if len(idx) <= images_per_class else rng.choice(idx, images_per_class, replace=False))
    return [images[i] for i in sorted(keep)]


def load_affectnet(
    root: str | Path,
    num_classes: int = 6,
    images_per_class: int = IMAGES_PER_CLASS,
    dev_fraction: float = 0.2,
    seed: int = 0,
    require_images: bool = True,
) -> AffectNetSplits:
    """Train / dev / test images of the 4- or 6-class task under the paper's protocol."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1); got {dev_fraction}")
    rng = np.random.default_rng(seed)
    pool = _cap(read_list(root, "training", num_classes, require_images), images_per_class, rng)
    labels = np.array([im.label for im in pool])
    dev_idx: set[int] = set()
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        dev_idx.update(idx[: round(len(idx) * dev_fraction)].tolist())
    train = [im for i, im in enumerate(pool) if i not in dev_idx]
    dev = [im for i, im in enumerate(pool) if i in dev_idx]
    test = read_list(root, "validation", num_classes, require_images)
    return AffectNetSplits(train, dev, test, task_classes(num_classes))
