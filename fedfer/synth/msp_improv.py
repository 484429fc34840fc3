"""Writes the MSP-IMPROV-shaped corpus in the layout `fedfer.data.datasets.msp_improv` documents.

    Video/session<k>/S<nn><T>/<C>/MSP-IMPROV-S<nn><T>-<G><kk>-<C>-<P><tt>.avi    640x480 XVID video
    Evalution.txt                                                                labels (spelled as in the release)
    _truth/                                                                      see fedfer.synth.truth

<nn> sentence, <T> target emotion (A, H, N, S), <G><kk> the speaking actor (gender F/M and session
01-06), <C> condition (R read, T target improvisation, P other improvisation, S natural
interaction), <P> the dyad direction (FM: female speaks to male), <tt> turn. Twelve actors, one
female and one male per session. Compared with the CREMA-D-shaped corpus: another camera (wider
frame, a room, warm side light), a more reserved actor population, more neutral and happy turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np

from fedfer.data.datasets import EMOTIONS_4
from fedfer.data.datasets.msp_improv import LABEL_FILES, LETTERS, actor_id
from fedfer.io import atomic_write_text
from fedfer.synth.actors import Actor, draw_actor
from fedfer.synth.expression import SENTENCES
from fedfer.synth.presets import MspImprovPreset, WorldPreset
from fedfer.synth.raters import (
    RaterModel,
    clip_evidence,
    expected_votes,
    plurality,
    rate,
)
from fedfer.synth.render import render_missing
from fedfer.synth.takes import Take, TakeSpec, perform, seed_for
from fedfer.synth.truth import take_row, write_truth

CORPUS_KEY = 3
LETTER = {emotion: letter for letter, emotion in LETTERS.items()}  # the reader's, reversed
WORD = {"ANG": "Angry", "HAP": "Happy", "NEU": "Neutral", "SAD": "Sad"}
CONDITIONS = ("R", "T", "P", "S")
TEXTS = tuple(SENTENCES.values())
# Arousal, valence, dominance (1-5 scale, as MSP-IMPROV's raters use) per emotion at full strength.
AVD = {"ANG": (4.2, 1.6, 3.8), "HAP": (3.6, 4.4, 3.4), "NEU": (2.6, 3.0, 3.0), "SAD": (2.0, 1.8, 2.2)}


@dataclass(frozen=True)
class MspClip:
    name: str
    actor: Actor
    session: int
    emotion: str
    condition: str
    intensity: float
    take: Take
    counts: np.ndarray  # (4,) votes in EMOTIONS_4 order
    choices: np.ndarray  # each rater's class index
    label: str  # consensus letter, X on a tie
    expressed: np.ndarray


def plan_corpus(preset: MspImprovPreset, raters: RaterModel, seed: int) -> list[MspClip]:
    clips: list[MspClip] = []
    emotions = list(preset.target_mix)
    probs = np.array(list(preset.target_mix.values()), np.float64)
    for a in range(12):
        session, gender = a // 2 + 1, "FM"[a % 2]
        actor = draw_actor(
            np.random.default_rng(seed_for(seed, CORPUS_KEY, 1, a)),
            actor_id(session, gender),
            "Female" if gender == "F" else "Male",
            preset.population,
        )
        for c in range(preset.clips_per_actor):
            rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 2, a, c))
            emotion = str(rng.choice(emotions, p=probs / probs.sum()))
            condition = CONDITIONS[c % len(CONDITIONS)]
            sentence = int(rng.integers(1, 21))
            pair = "FM" if gender == "F" else "MF"
            name = f"MSP-IMPROV-S{sentence:02d}{LETTER[emotion]}-{gender}{session:02d}-{condition}-{pair}{c + 1:02d}"
            rel = f"Video/session{session}/S{sentence:02d}{LETTER[emotion]}/{condition}/{name}{preset.extension}"
            # natural and improvised turns are milder than read targets
            intensity = (
                0.0 if emotion == "NEU" else float(rng.uniform(*preset.intensity)) * (1.0 if condition in "RT" else 0.8)
            )
            spec = TakeSpec.filmed(preset, name, rel, TEXTS[sentence % len(TEXTS)], emotion, intensity)
            take = perform(actor, spec, seed_for(seed, CORPUS_KEY, 3, a, c))
            face, _, av = clip_evidence(take.perceived, actor.style, emotion, intensity, EMOTIONS_4, raters)
            r = rate(
                rng, av, EMOTIONS_4, int(rng.integers(5, 9)), raters.sharpness, raters.neutral_threshold, raters.bias_sd
            )
            top = plurality(r.counts, EMOTIONS_4)
            label = LETTER[top[0]] if len(top) == 1 else "X"
            clips.append(
                MspClip(
                    name,
                    actor,
                    session,
                    emotion,
                    condition,
                    intensity,
                    take,
                    r.counts,
                    r.choices,
                    label,
                    expected_votes(face, EMOTIONS_4, raters),
                )
            )
    return clips


def _avd(rng: np.random.Generator, shares: np.ndarray) -> tuple[float, float, float]:
    values = np.array([AVD[e] for e in EMOTIONS_4]).T @ shares
    return tuple(float(np.clip(v + rng.normal(0, 0.3), 1, 5)) for v in values)  # type: ignore[return-value]


def evaluation_txt(clips: list[MspClip], seed: int) -> str:
    """One block per clip: the consensus line, then one line per rater (id; emotion; A; V; D)."""
    lines = []
    for i, c in enumerate(clips):
        rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 4, i))
        a, v, d = _avd(rng, c.counts / c.counts.sum())
        lines.append(f"UTD-IMPROV-{c.name[len('MSP-IMPROV-') :]}.avi; {c.label}; A:{a:.6f}; V:{v:.6f}; D:{d:.6f};")
        for k, choice in enumerate(c.choices):
            a, v, d = _avd(rng, np.eye(len(EMOTIONS_4))[choice])
            lines.append(f"rater{k + 1:02d}; {WORD[EMOTIONS_4[choice]]}; A:{a:.6f}; V:{v:.6f}; D:{d:.6f};")
        lines.append("")
    return "\n".join(lines)


def write_msp_improv(root: Path, world: WorldPreset, seed: int, pool: Pool | None, progress: bool) -> dict:
    """Render (resuming) and write the labels and truth; returns counts."""
    clips = plan_corpus(world.msp_improv, world.raters, seed)
    rendered = render_missing([c.take.plan for c in clips], root, pool, "msp_improv videos", progress)
    atomic_write_text(root / LABEL_FILES[0], evaluation_txt(clips, seed))  # spelled as in the release
    truth = [
        take_row(
            c.name,
            c.actor.actor_id,
            c.emotion,
            c.intensity,
            c.take,
            EMOTIONS_4,
            c.expressed,
            session=c.session,
            condition=c.condition,
        )
        for c in clips
    ]
    actors = {c.actor.actor_id: c.actor.as_dict() for c in clips}
    write_truth(root, truth, actors, "one row per video; expressed_* is the expected share of votes per emotion.")
    return {
        "actors": len(actors),
        "clips": len(clips),
        "frames": int(sum(len(c.take.plan.aus) for c in clips)),
        "rendered_now": rendered,
    }
