"""One take: an actor speaking a sentence with an emotion at an intensity → a `ClipPlan` + truth.

The AU track of a take is the actor's resting face, plus the actor's own version of the emotion
(substitutions, expressivity) under a neutral → onset → apex → offset envelope, plus small
micro-movements; speech and blinks run on top. Emotion also colours articulation (anger is
spoken wider and faster, sadness smaller and slower), which is visible in the jaw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fedfer.synth.actors import BLEND_STREAM, Actor
from fedfer.synth.camera import Camera, pose_track
from fedfer.synth.expression import blink_track, draw_envelope, speech_track, syllables
from fedfer.synth.raters import perceived_expression
from fedfer.synth.render import ClipPlan

if TYPE_CHECKING:
    from fedfer.synth.presets import CremaDPreset, MspImprovPreset

# Emotion → (jaw amplitude factor, speech-rate factor) of speech.
ARTICULATION: dict[str, tuple[float, float]] = {
    "NEU": (1.0, 1.0),
    "HAP": (1.1, 1.05),
    "SAD": (0.75, 0.85),
    "ANG": (1.25, 1.1),
    "FEA": (1.05, 1.1),
    "DIS": (0.9, 0.95),
}


def seed_for(*key: int) -> int:
    """A 32-bit seed from integers (world seed, corpus, actor, clip...): independent streams per
    item, so results do not depend on processing order or worker count."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


@dataclass(frozen=True)
class TakeSpec:
    """What to film and how: the sentence text, emotion, intensity (0-1) and the corpus' timing."""

    clip_id: str
    rel_path: str
    text: str
    emotion: str
    intensity: float
    fps: float
    speech_rate: float  # syllables per second
    lead_s: float
    tail_s: float
    camera: Camera
    fourcc: str

    @classmethod
    def filmed(
        cls,
        preset: CremaDPreset | MspImprovPreset,
        clip_id: str,
        rel_path: str,
        text: str,
        emotion: str,
        intensity: float,
    ) -> TakeSpec:
        """A take filmed with a corpus preset's timing, camera and codec."""
        return cls(
            clip_id,
            rel_path,
            text,
            emotion,
            intensity,
            preset.fps,
            preset.speech_rate,
            preset.lead_s,
            preset.tail_s,
            preset.camera,
            preset.fourcc,
        )


@dataclass(frozen=True)
class Take:
    plan: ClipPlan
    onset: int
    apex: int
    offset: int

    @functools.cached_property
    def perceived(self) -> np.ndarray:
        """(N_AUS,) what a viewer takes away (`perceived_expression`): computed once, for the raters
        and the truth sidecar alike."""
        return perceived_expression(self.plan.aus, self.onset)


def perform(actor: Actor, spec: TakeSpec, seed: int) -> Take:
    """The plan of `actor` performing `spec`; every random choice comes from `seed`."""
    rng = np.random.default_rng(seed)
    style = actor.style
    jaw_gain, rate_gain = ARTICULATION.get(spec.emotion, (1.0, 1.0))
    syls = syllables(spec.text)
    rate = spec.speech_rate * rate_gain * rng.uniform(0.9, 1.1)
    lead = spec.lead_s * rng.uniform(0.8, 1.25)
    duration = lead + len(syls) / rate + spec.tail_s * rng.uniform(0.8, 1.25)
    n = max(4, round(duration * spec.fps))

    env = draw_envelope(rng, n, spec.fps)
    target = style.display(spec.emotion, np.random.default_rng((seed, BLEND_STREAM))) * spec.intensity
    micro = rng.normal(0, 0.03, (n, len(target))).cumsum(axis=0) * 0.3
    aus = style.resting_vector()[None, :] + env.curve(n)[:, None] * target[None, :] + np.abs(micro) * (target > 0)
    aus = np.clip(aus, 0.0, 1.0).astype(np.float32)
    speech = speech_track(syls, n, spec.fps, lead, rate, style.articulation * jaw_gain, rng)
    blink = blink_track(rng, n, spec.fps, style.blink_rate)
    pose = pose_track(rng, spec.camera, n, spec.fps, style.head_motion)
    plan = ClipPlan(
        clip_id=spec.clip_id,
        rel_path=spec.rel_path,
        identity=actor.identity,
        camera=spec.camera,
        fps=spec.fps,
        fourcc=spec.fourcc,
        aus=aus,
        speech=speech,
        blink=blink,
        pose=pose,
        seed=int(rng.integers(2**31)),
    )
    return Take(plan, env.onset, env.apex, env.offset)
