"""The pseudo-labeller a run uses (the method's g()), chosen by name or given as a trained g()'s path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedfer.config import TEACHERS
from fedfer.stages.workspace import World


def require_stills(world: World) -> Path:
    """The world's AffectNet-layout folder; FileNotFoundError naming the remedies when it has none."""
    if world.affectnet is None:
        raise FileNotFoundError(
            "the affectnet teacher trains g() on an AffectNet-layout corpus: pass --affectnet DIR, or choose "
            "another pseudo-labeller with --teacher (crema-frames, fer2013-mini-xception, or a trained g()'s path)"
        )
    return world.affectnet


@dataclass(frozen=True)
class Teacher:
    """The pseudo-labeller of a run and why it was chosen (both are printed and reported)."""

    name: str  # one of TEACHERS, or "checkpoint" for a g() given by path
    reason: str
    checkpoint: Path | None = None  # the g() the clients load; None for the pixel teacher


def default_teacher(has_stills: bool) -> Teacher:
    """The teacher of a run without --teacher: g() on the world's AffectNet-layout stills where it has
    them, else on its training actors' video frames."""
    if has_stills:
        return Teacher("affectnet", "default: g() trained on the world's AffectNet-layout stills")
    return Teacher("crema-frames", "no --affectnet: g() trained on the training actors' video frames")


def choose_teacher(teacher: str | None, world: World) -> Teacher:
    """The teacher a run asked for (`--teacher`), or the default for its world; the g() is filled in later.

    Raises FileNotFoundError when the choice cannot work (affectnet without stills, a missing path).
    """
    if teacher is None:
        return default_teacher(world.affectnet is not None)
    if teacher == "affectnet":
        require_stills(world)
    if teacher in TEACHERS:
        return Teacher(teacher, "chosen with --teacher")
    path = Path(teacher)
    if not path.is_file():
        raise FileNotFoundError(
            f"--teacher {teacher!r} is neither one of {', '.join(TEACHERS)} nor an existing g() checkpoint file"
        )
    return Teacher("checkpoint", "a trained g() given with --teacher / --ifer-checkpoint", path)
