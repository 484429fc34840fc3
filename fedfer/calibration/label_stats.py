"""CREMA-D's perceived-label statistics, computed the same way for the real label files and a world.

From the vote counts of each clip (face-only and audio-visual crowds) and the acted emotion and
level in its name: the plurality shares per class and the ties, the intended → perceived confusion
of the face crowd (each row sums to 1 over the six classes and "tie"), the face crowd's agreement
with the acted emotion per intensity level, and its spread across actors (agreement among each
actor's labelled clips: real CREMA-D 70.6 ± 12.3).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedfer.data.datasets import EMOTIONS_6
from fedfer.data.datasets.crema_d import CLIP_NAME, read_votes

TIE = "tie"
LEVELS: tuple[str, ...] = ("LO", "MD", "HI", "XX")


@dataclass(frozen=True)
class VotedClip:
    """One clip's name parts and vote counts in EMOTIONS_6 order."""

    actor: str
    intended: str
    level: str
    face: tuple[int, ...]
    av: tuple[int, ...]


def plurality_label(counts: Sequence[int]) -> str:
    """The top emotion of a vote count (EMOTIONS_6 order), or "tie"."""
    votes = np.asarray(counts)
    top = np.flatnonzero(votes == votes.max())
    return EMOTIONS_6[int(top[0])] if len(top) == 1 else TIE


def voted_clips(votes: Mapping[str, Mapping[str, Sequence[int]]]) -> list[VotedClip]:
    """`VotedClip`s from {clip id: {"face": counts, "av": counts, ...}} (`read_votes`' shape)."""
    out = []
    for clip_id, by_modality in votes.items():
        match = CLIP_NAME.match(clip_id)
        if match is None:
            raise ValueError(f"clip {clip_id!r} is not named ActorID_Sentence_Emotion_Level")
        out.append(
            VotedClip(
                match["actor"],
                match["emotion"],
                match["level"],
                tuple(by_modality["face"]),
                tuple(by_modality["av"]),
            )
        )
    return out


def read_voted_clips(root: Path) -> list[VotedClip]:
    """The clips of a CREMA-D-layout folder (real or synthetic) with their face and AV votes."""
    return voted_clips(read_votes(root))


def label_statistics(clips: Sequence[VotedClip]) -> dict[str, float]:
    """Flat {statistic: value} of the label statistics, shares as fractions of clips.

    Keys: `face_share_<C>` and `av_share_<C>` for C in the six classes and "tie";
    `face_confusion_<I>_<C>` (share of clips acted as I whose face plurality is C or a tie);
    `face_agreement_<LEVEL>` over emotional clips of each level present; `face_actor_agreement_mean`
    and `_sd` (per actor, over its clips with a single face plurality).
    """
    if not clips:
        raise ValueError("label statistics need at least one clip")
    classes = (*EMOTIONS_6, TIE)
    face = [plurality_label(c.face) for c in clips]
    av = [plurality_label(c.av) for c in clips]
    stats: dict[str, float] = {}
    for name, labels in (("face", face), ("av", av)):
        for cls in classes:
            stats[f"{name}_share_{cls}"] = float(np.mean([lab == cls for lab in labels]))
    for intended in EMOTIONS_6:
        rows = [lab for c, lab in zip(clips, face) if c.intended == intended]
        for cls in classes:
            stats[f"face_confusion_{intended}_{cls}"] = float(np.mean([lab == cls for lab in rows])) if rows else 0.0
    for level in LEVELS:
        agree = [lab == c.intended for c, lab in zip(clips, face) if c.level == level and c.intended != "NEU"]
        if agree:
            stats[f"face_agreement_{level}"] = float(np.mean(agree))
    per_actor: dict[str, list[bool]] = defaultdict(list)
    for c, lab in zip(clips, face):
        if lab != TIE:
            per_actor[c.actor].append(lab == c.intended)
    agreement = np.array([np.mean(v) for v in per_actor.values()])
    stats["face_actor_agreement_mean"] = float(agreement.mean())
    stats["face_actor_agreement_sd"] = float(agreement.std(ddof=1)) if len(agreement) > 1 else 0.0
    return stats
