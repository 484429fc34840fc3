"""Facial expression over time: action units (AUs), emotion prototypes, envelopes, speech and blinks.

An expression is a vector of AU intensities in [0, 1] (FACS names below). Emotions map to AU
prototypes after EMFACS (happiness = cheek raise + lip-corner pull, ...), scaled by the clip's
intensity. A clip's AU track is (T, N_AUS): the actor's resting face, plus the emotion under a
neutral → onset → apex → offset envelope. Speech is a separate (T, 3) track of jaw opening, lip
rounding and bilabial closure driven by the syllables of the spoken sentence, *whatever the emotion*:
a talking mouth opens the jaw like AU26 and stretches the lips like AU20, so one frame is ambiguous
and the change over the clip (from the actor's own neutral start) carries what single frames do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# FACS action units drawn by `fedfer.synth.face`. AU14 is drawn on the right side only (the
# unilateral dimpler of contempt); AU23 stands for lip tightening and pressing (AU23/24).
AUS: tuple[str, ...] = (
    "AU1",  # inner brow raiser
    "AU2",  # outer brow raiser
    "AU4",  # brow lowerer
    "AU5",  # upper lid raiser
    "AU6",  # cheek raiser
    "AU7",  # lid tightener
    "AU9",  # nose wrinkler
    "AU10",  # upper lip raiser
    "AU12",  # lip corner puller
    "AU14",  # dimpler (right side)
    "AU15",  # lip corner depressor
    "AU17",  # chin raiser
    "AU20",  # lip stretcher
    "AU23",  # lip tightener / presser
    "AU26",  # jaw drop
)
N_AUS = len(AUS)
AU_INDEX = {name: i for i, name in enumerate(AUS)}

# Emotion prototypes at full intensity (EMFACS-style). SUR and CON exist for the still-image corpus
# (AffectNet has Surprise and Contempt); the video corpora use the other six.
PROTOTYPE_WEIGHTS: dict[str, dict[str, float]] = {
    "NEU": {},
    "HAP": {"AU6": 0.8, "AU12": 1.0, "AU26": 0.15},
    "SAD": {"AU1": 0.9, "AU4": 0.45, "AU15": 0.8, "AU17": 0.4},
    "ANG": {"AU4": 1.0, "AU5": 0.45, "AU7": 0.7, "AU23": 0.8},
    "FEA": {"AU1": 0.8, "AU2": 0.7, "AU4": 0.45, "AU5": 1.0, "AU20": 0.8, "AU26": 0.4},
    "DIS": {"AU4": 0.3, "AU9": 0.9, "AU10": 0.8, "AU15": 0.35, "AU17": 0.3},
    "SUR": {"AU1": 0.9, "AU2": 0.9, "AU5": 0.8, "AU26": 0.8},
    "CON": {"AU14": 0.9, "AU12": 0.15},
}


def au_vector(weights: dict[str, float]) -> np.ndarray:
    """A (N_AUS,) float32 vector from {AU name: intensity}; unknown names raise."""
    vec = np.zeros(N_AUS, np.float32)
    for name, value in weights.items():
        if name not in AU_INDEX:
            raise ValueError(f"unknown action unit {name!r}; known: {', '.join(AUS)}")
        vec[AU_INDEX[name]] = value
    return vec


PROTOTYPES: dict[str, np.ndarray] = {emo: au_vector(w) for emo, w in PROTOTYPE_WEIGHTS.items()}

# The twelve CREMA-D sentences (code → text); the text drives the syllables of the speech track.
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}


@dataclass(frozen=True)
class Syllable:
    """One spoken syllable: how far the jaw opens (0-1), lip rounding (0-1), and whether it starts
    with a bilabial (m, b, p: the lips close before opening)."""

    open: float
    round: float
    bilabial: bool


_VOWEL_GROUP = re.compile(r"[aeiouy]+")
_OPENNESS = {"a": 1.0, "o": 0.85, "e": 0.7, "u": 0.55, "i": 0.45, "y": 0.45}
_ROUNDING = {"o": 0.8, "u": 0.9, "w": 0.7}


def syllables(text: str) -> list[Syllable]:
    """A rough syllabification of English text: one syllable per vowel group of each word.

    Crude on purpose: only the rhythm (how many openings, how wide, where the lips round or close)
    reaches the face, and that is what makes a talking mouth move like a real one.
    """
    out: list[Syllable] = []
    for word in re.findall(r"[a-z']+", text.lower()):
        word = word.replace("'", "")
        groups = list(_VOWEL_GROUP.finditer(word))
        if len(groups) > 1 and word.endswith("e") and groups[-1].group() == "e":
            groups = groups[:-1]  # silent final e ("maybe" keeps two, "like" has one)
        prev_end = 0
        for g in groups or [None]:
            vowel = g.group()[0] if g else "e"
            onset = word[prev_end : g.start()] if g else word
            rounding = max(_ROUNDING.get(vowel, 0.0), max((_ROUNDING.get(c, 0.0) for c in onset), default=0.0))
            out.append(Syllable(_OPENNESS[vowel], rounding, any(c in "mbp" for c in onset)))
            prev_end = g.end() if g else len(word)
    return out


@dataclass(frozen=True)
class Envelope:
    """Frame indices of an expression's time course: neutral until `onset`, rising until `apex`,
    held until `offset`, then decaying to `release` of its apex value by the last frame.

    The neutral start is what lets a sequence model see the actor's own resting face before the
    emotion arrives; the decay keeps apex frames a minority of the clip.
    """

    onset: int
    apex: int
    offset: int
    release: float = 0.5

    def curve(self, n_frames: int) -> np.ndarray:
        """(T,) float32 weights in [0, 1] with a smooth (raised-cosine) rise and fall."""
        t = np.arange(n_frames, dtype=np.float32)
        rise = np.clip((t - self.onset) / max(self.apex - self.onset, 1), 0.0, 1.0)
        fall = np.clip((t - self.offset) / max(n_frames - 1 - self.offset, 1), 0.0, 1.0)
        smooth = lambda x: 0.5 - 0.5 * np.cos(np.pi * x)  # noqa: E731 - a one-line easing curve
        return (smooth(rise) * (1.0 - (1.0 - self.release) * smooth(fall))).astype(np.float32)


def draw_envelope(rng: np.random.Generator, n_frames: int, fps: float) -> Envelope:
    """Onset after 20-35% of the clip (long enough to show the resting face), a 0.25-0.5 s rise,
    apex held to 70-90% of the clip."""
    onset = round(n_frames * rng.uniform(0.2, 0.35))
    apex = min(n_frames - 1, onset + max(1, round(fps * rng.uniform(0.25, 0.5))))
    offset = max(apex, round(n_frames * rng.uniform(0.7, 0.9)))
    return Envelope(onset, apex, offset, release=float(rng.uniform(0.3, 0.8)))


def speech_track(
    syls: list[Syllable],
    n_frames: int,
    fps: float,
    start_s: float,
    rate_syl_per_s: float,
    amplitude: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(T, 3) float32 jaw / round / close channels for `syls` spoken from `start_s` at the given rate.

    Each syllable is a raised-cosine jaw opening of its vowel's width (jittered), the lips close
    briefly at bilabial onsets; amplitude is the speaker's articulation (emotion and actor dependent).
    """
    track = np.zeros((n_frames, 3), np.float32)
    t = np.arange(n_frames, dtype=np.float32) / fps
    dur = 1.0 / rate_syl_per_s
    for i, syl in enumerate(syls):
        t0 = start_s + i * dur * rng.uniform(0.85, 1.15)
        phase = np.clip((t - t0) / dur, 0.0, 1.0)
        bump = np.sin(np.pi * phase) * ((t >= t0) & (t <= t0 + dur))
        track[:, 0] = np.maximum(track[:, 0], amplitude * syl.open * rng.uniform(0.75, 1.15) * bump)
        track[:, 1] = np.maximum(track[:, 1], syl.round * bump)
        if syl.bilabial:
            closing = np.clip(1.0 - np.abs(t - t0) * rate_syl_per_s * 4.0, 0.0, 1.0)
            track[:, 2] = np.maximum(track[:, 2], closing)
    return np.clip(track, 0.0, 1.0)


def blink_track(rng: np.random.Generator, n_frames: int, fps: float, rate_per_s: float) -> np.ndarray:
    """(T,) float32 eyelid closure: Poisson blinks of ~0.15 s (full closure at the middle frame)."""
    closure = np.zeros(n_frames, np.float32)
    t = np.arange(n_frames, dtype=np.float32) / fps
    n_blinks = rng.poisson(rate_per_s * n_frames / fps)
    for start in rng.uniform(0.0, n_frames / fps, size=n_blinks):
        closure = np.maximum(closure, np.clip(1.0 - np.abs(t - start) / 0.08, 0.0, 1.0))
    return closure
