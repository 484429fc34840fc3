"""Readers for the corpora fedfer works with, in their real on-disk layouts.

Every reader returns `Clip` (videos) or `StillImage` (images) records; class indices always refer to
the task's class tuple below, so a 4-class and a 6-class model never disagree on what index 2 means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# CREMA-D emotion codes in the corpus' own (alphabetical) order; ties are written in this order too.
EMOTIONS_6: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
# The 4-class task shared with MSP-IMPROV (and AffectNet's 4-class setting).
EMOTIONS_4: tuple[str, ...] = ("ANG", "HAP", "NEU", "SAD")


def task_classes(num_classes: int) -> tuple[str, ...]:
    """The class tuple of the 4- or 6-class task."""
    if num_classes == 6:
        return EMOTIONS_6
    if num_classes == 4:
        return EMOTIONS_4
    raise ValueError(f"fedfer has a 4-class and a 6-class task; got num_classes={num_classes}")


@dataclass(frozen=True)
class Task:
    """What is learned: 4 or 6 classes, which CREMA-D labels, which seed."""

    num_classes: int = 6
    label_mode: str = "av"  # audio-visual plurality, as in the paper
    ties: str = "exclude"
    seed: int = 0

    @property
    def classes(self) -> tuple[str, ...]:
        return task_classes(self.num_classes)


@dataclass(frozen=True)
class Clip:
    """One video of one actor.

    label: index into the task's classes, or None where the clip has no usable label in the chosen
    mode (a tie under the 'exclude' policy, or a class outside the task). votes: per-class vote
    counts in the task's class order (for distribution labels), or None where the corpus has none.
    """

    clip_id: str
    actor: str
    path: Path
    label: int | None
    votes: tuple[int, ...] | None = None
    intended: str | None = None
    meta: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class StillImage:
    """One face image with its annotated box (pixels, x/y/width/height) and class index."""

    path: Path
    label: int
    box: tuple[int, int, int, int] | None = None
