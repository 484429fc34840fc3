"""Simulated raters: face-only, voice-only and audio-visual crowds voting on what a clip shows.

A face rater watches the clip: it sees the actor's face before the emotion arrives and judges what
changed, so a resting face that looks sad does not make a neutral clip sad (a single frame, or a
still, has no such reference: there the rater judges the face as it is). It reads the change with
the actor's own cues (a person who shows sadness with the brows is still read as sad by someone
who watches them speak): evidence for an emotion is how much of the actor's version of it is
present (a projection normalised so the full version scores 1); neutral wins when nothing scores
above a threshold. Each rater adds a personal bias and Gumbel noise and votes the argmax, so weak
or mixed expressions split the crowd, sadness collapses into neutral, and ties happen, as in
CREMA-D. Voice raters hear the intended emotion scaled by the actor's vocal expressivity;
audio-visual raters add both. The same model labels the still images (one rater per image, as
AffectNet has one annotator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedfer.synth.expression import PROTOTYPES

if TYPE_CHECKING:
    from fedfer.synth.actors import Style

# CREMA-D letters of the six emotions, in the corpus' fixed order (ties are joined in this order).
LETTERS = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
RESP_NAMES = {"ANG": "Anger", "DIS": "Disgust", "FEA": "Fear", "HAP": "Happy", "NEU": "Neutral", "SAD": "Sad"}


def perceived_expression(aus: np.ndarray, onset: int, top_fraction: float = 0.3) -> np.ndarray:
    """(N_AUS,) what a viewer takes away from a (T, N_AUS) track whose emotion starts at frame
    `onset`: the change from the face before it (the first `onset` frames, at least one), averaged
    over the most changed frames (raters remember the apex, not the average)."""
    change = np.clip(aus - aus[: max(1, onset)].mean(axis=0), 0.0, None)
    energy = change.sum(axis=1)
    k = max(1, round(len(aus) * top_fraction))
    return change[np.argsort(energy)[-k:]].mean(axis=0)


def face_evidence(
    expression: np.ndarray, emotions: tuple[str, ...], cues: Callable[[str], np.ndarray] | None = None
) -> np.ndarray:
    """(K,) evidence per emotion in `emotions` (NEU scores 0 here; raters compare to a threshold).

    cues: emotion → (N_AUS,) the actor's own cues (`Style.cue_prototype`); the population's
    prototypes when None (a stranger's face in a still)."""
    out = np.zeros(len(emotions), np.float32)
    for k, emo in enumerate(emotions):
        proto = PROTOTYPES[emo] if cues is None or emo == "NEU" else cues(emo)
        norm2 = float(proto @ proto)
        out[k] = float(expression @ proto) / norm2 if norm2 > 0 else 0.0
    return out


@dataclass(frozen=True)
class RaterModel:
    """How a crowd turns evidence into votes.

    sharpness: inverse temperature on evidence; neutral_threshold: evidence that neutral needs to
    lose to; bias_sd: spread of a rater's preference per emotion; voice_*: the same for the voice
    channel, whose evidence is the intended emotion at the actor's vocal expressivity.
    """

    sharpness: float = 7.0
    neutral_threshold: float = 0.32
    bias_sd: float = 0.35
    voice_sharpness: float = 2.5
    voice_threshold: float = 0.7
    av_face_weight: float = 0.85


def voice_evidence(intended: str, intensity: float, vocal_expressivity: float, emotions: tuple[str, ...]) -> np.ndarray:
    """(K,) the voice's evidence: the intended emotion only (no voice is rendered, so this channel
    is a stand-in that gives voice-only and audio-visual raters something to hear)."""
    out = np.zeros(len(emotions), np.float32)
    if intended in emotions and intended != "NEU":
        out[emotions.index(intended)] = intensity * vocal_expressivity
    return out


def clip_evidence(
    perceived: np.ndarray, style: Style, emotion: str, intensity: float, emotions: tuple[str, ...], model: RaterModel
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K,) face, voice and audio-visual evidence for one performed clip: the face read with the
    actor's own cues from what a viewer perceives, the voice from the intended emotion."""
    face = face_evidence(perceived, emotions, style.cue_prototype)
    voice = voice_evidence(emotion, intensity, style.vocal_expressivity, emotions)
    return face, voice, model.av_face_weight * face + (1 - model.av_face_weight) * voice


def _logits(evidence: np.ndarray, emotions: tuple[str, ...], sharpness: float, threshold: float) -> np.ndarray:
    """(K,) a rater's preference before noise: sharpness × evidence, and for neutral, the threshold
    that every other emotion must beat."""
    logits = sharpness * evidence.astype(np.float64)
    return np.where(np.array([e == "NEU" for e in emotions]), sharpness * threshold, logits)


def vote(
    rng: np.random.Generator,
    evidence: np.ndarray,
    emotions: tuple[str, ...],
    n: int,
    sharpness: float,
    threshold: float,
    bias_sd: float,
) -> np.ndarray:
    """(n,) class indices into `emotions` chosen by n raters looking at `evidence` (K,)."""
    logits = _logits(evidence, emotions, sharpness, threshold)
    noisy = logits[None, :] + rng.normal(0, bias_sd, (n, len(emotions))) + rng.gumbel(size=(n, len(emotions)))
    return noisy.argmax(axis=1)


def vote_levels(
    rng: np.random.Generator, choices: np.ndarray, evidence: np.ndarray, emotions: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Each vote's intensity rating, 0-100: (raw, normalised per rater).

    The normalised level is the rater's own judgement; the raw one is that judgement through the
    rater's personal use of the scale (a floor and a ceiling), which is what normalisation removes.
    """
    strongest = float(evidence.max()) if len(evidence) else 0.0
    true = np.empty(len(choices))
    for i, k in enumerate(choices):
        centre = 75 - 40 * strongest if emotions[k] == "NEU" else 25 + 70 * float(evidence[k])
        true[i] = np.clip(centre + rng.normal(0, 15), 0, 100)
    floor = rng.uniform(0, 30, len(choices))
    ceiling = rng.uniform(70, 100, len(choices))
    raw = np.round(floor + (ceiling - floor) * true / 100.0)
    return raw, true


@dataclass(frozen=True)
class Ratings:
    """One modality's ratings of one clip: votes per class (K,), and each response's levels."""

    counts: np.ndarray
    choices: np.ndarray
    raw_levels: np.ndarray
    norm_levels: np.ndarray


def rate(
    rng: np.random.Generator,
    evidence: np.ndarray,
    emotions: tuple[str, ...],
    n: int,
    sharpness: float,
    threshold: float,
    bias_sd: float,
) -> Ratings:
    choices = vote(rng, evidence, emotions, n, sharpness, threshold, bias_sd)
    raw, norm = vote_levels(rng, choices, evidence, emotions)
    return Ratings(np.bincount(choices, minlength=len(emotions)), choices, raw, norm)


def plurality(counts: np.ndarray, emotions: tuple[str, ...]) -> list[str]:
    """Every emotion with the top count, in `emotions` order (a tie keeps them all)."""
    top = counts.max()
    return [e for e, c in zip(emotions, counts) if c == top]


def expected_votes(evidence: np.ndarray, emotions: tuple[str, ...], model: RaterModel) -> np.ndarray:
    """(K,) the share of votes an average rater gives each emotion (ignoring rater bias): the
    clip's expressed mixture as recorded in the truth sidecar."""
    logits = _logits(evidence, emotions, model.sharpness, model.neutral_threshold)
    p = np.exp(logits - logits.max())
    return p / p.sum()
