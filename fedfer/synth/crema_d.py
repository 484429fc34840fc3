"""Writes the CREMA-D-shaped corpus in the real layout, so `fedfer.data.datasets.crema_d` reads it as is.

    VideoFlash/<actor>_<sentence>_<EMO>_<LEVEL>.flv  480x360 FLV1 video
    VideoDemographics.csv                            ActorID, Age, Sex, Race, Ethnicity
    SentenceFilenames.csv                            Stimulus_Number, Filename
    processedResults/tabulatedVotes.csv              votes per clip and modality (row id = 100000*queryType + clipNum)
    processedResults/summaryTable.csv                plurality vote and level per modality
    _truth/                                          see fedfer.synth.truth

Numbers are written as R's write.csv writes them (15 significant digits), ties joined with ':' in
the fixed order A, D, F, H, N, S, and summaryTable levels formatted as R's format() does.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.pool import Pool
from pathlib import Path

import numpy as np

from fedfer.data.datasets import EMOTIONS_6
from fedfer.data.datasets.crema_d import (
    DEMOGRAPHICS_FILE,
    MODALITIES,
    SUMMARY_FILE,
    VIDEO_DIR,
    VOTES_FILE,
)
from fedfer.io import atomic_write_text
from fedfer.synth.actors import Actor, Population, draw_actor
from fedfer.synth.expression import SENTENCES
from fedfer.synth.presets import ALL_SENTENCES, CremaDPreset, WorldPreset
from fedfer.synth.raters import (
    LETTERS,
    RESP_NAMES,
    RaterModel,
    Ratings,
    clip_evidence,
    expected_votes,
    plurality,
    rate,
)
from fedfer.synth.render import render_missing
from fedfer.synth.takes import Take, TakeSpec, perform, seed_for
from fedfer.synth.truth import take_row, write_truth

CORPUS_KEY = 1  # seed-stream id of this corpus
# Order of emotions within a sentence, as in the real SentenceFilenames.csv.
CLIP_ORDER: tuple[str, ...] = ("NEU", "HAP", "SAD", "ANG", "FEA", "DIS")
# Raters per clip and modality: the real corpus' face counts (6-12, mostly 9-10).
N_RATERS = np.arange(6, 13)
N_RATERS_P = np.array([9, 76, 460, 2151, 4185, 553, 8], np.float64) / 7442
QUERY_TYPES = {name: query for query, name in MODALITIES.items()}  # the reader's, reversed


@dataclass(frozen=True)
class CremaDClip:
    clip_num: int  # 1-based Stimulus_Number
    clip_id: str
    actor: Actor
    sentence: str
    emotion: str
    level: str
    intensity: float
    take: Take
    ratings: dict[str, Ratings]  # modality → ratings
    expressed: np.ndarray  # (6,) expected face-vote shares


def cast(seed: int, n_actors: int, population: Population) -> list[Actor]:
    """Actors 1001.. with CREMA-D's sex ratio (48 of 91 male), in a seeded order."""
    rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 0))
    n_male = round(n_actors * 48 / 91)
    sexes = rng.permutation(["Male"] * n_male + ["Female"] * (n_actors - n_male))
    return [
        draw_actor(np.random.default_rng(seed_for(seed, CORPUS_KEY, 1, i)), str(1001 + i), str(sexes[i]), population)
        for i in range(n_actors)
    ]


def clip_list(preset: CremaDPreset, actor_id: str) -> list[tuple[str, str, str]]:
    """(sentence, emotion, level) in the real corpus' order, minus the preset's missing clips."""
    out = []
    for sentence in (s for s in ALL_SENTENCES if s in preset.sentences):
        for emotion in CLIP_ORDER:
            levels = ("XX",) if sentence != "IEO" or emotion == "NEU" else preset.ieo_levels
            for level in levels:
                if f"{actor_id}_{sentence}_{emotion}_{level}" not in preset.missing:
                    out.append((sentence, emotion, level))
    return out


def plan_corpus(preset: CremaDPreset, raters: RaterModel, seed: int) -> list[CremaDClip]:
    """Every clip's take and ratings (cheap; no pixels)."""
    clips: list[CremaDClip] = []
    for a, actor in enumerate(cast(seed, preset.n_actors, preset.population)):
        for c, (sentence, emotion, level) in enumerate(clip_list(preset, actor.actor_id)):
            rng = np.random.default_rng(seed_for(seed, CORPUS_KEY, 2, a, c))
            if emotion == "NEU":
                intensity = 0.0
            elif level == "XX":
                intensity = float(rng.uniform(*preset.xx_intensity))
            else:
                intensity = preset.level_intensity[level] * float(rng.uniform(0.9, 1.1))
            clip_id = f"{actor.actor_id}_{sentence}_{emotion}_{level}"
            spec = TakeSpec.filmed(
                preset, clip_id, f"{VIDEO_DIR}/{clip_id}{preset.extension}", SENTENCES[sentence], emotion, intensity
            )
            take = perform(actor, spec, seed_for(seed, CORPUS_KEY, 3, a, c))
            face, voice, av = clip_evidence(take.perceived, actor.style, emotion, intensity, EMOTIONS_6, raters)
            ratings = {
                "voice": rate(
                    rng,
                    voice,
                    EMOTIONS_6,
                    int(rng.choice(N_RATERS, p=N_RATERS_P)),
                    raters.voice_sharpness,
                    raters.voice_threshold,
                    raters.bias_sd,
                ),
                "face": rate(
                    rng,
                    face,
                    EMOTIONS_6,
                    int(rng.choice(N_RATERS, p=N_RATERS_P)),
                    raters.sharpness,
                    raters.neutral_threshold,
                    raters.bias_sd,
                ),
                "av": rate(
                    rng,
                    av,
                    EMOTIONS_6,
                    int(rng.choice(N_RATERS, p=N_RATERS_P)),
                    raters.sharpness,
                    raters.neutral_threshold,
                    raters.bias_sd,
                ),
            }
            clips.append(
                CremaDClip(
                    len(clips) + 1,
                    clip_id,
                    actor,
                    sentence,
                    emotion,
                    level,
                    intensity,
                    take,
                    ratings,
                    expected_votes(face, EMOTIONS_6, raters),
                )
            )
    return clips


# ---------------------------------------------------------------- R-style CSV formatting


def _r_num(x: float) -> str:
    """A number as R's write.csv prints it (15 significant digits, no trailing zeros)."""
    return f"{x:.15g}"


def _q(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _r_levels(values: list[float]) -> str:
    """Levels as summaryTable holds them: round(x, 2); ties formatted together by R's format(),
    which pads every value to the decimals the most precise one needs ("30.67:51.00", "66:50")."""
    rounded = [round(v, 2) for v in values]
    if len(rounded) == 1:
        return _r_num(rounded[0])
    decimals = max(len(_r_num(v).split(".")[1]) if "." in _r_num(v) else 0 for v in rounded)
    return ":".join(f"{v:.{decimals}f}" for v in rounded)


def _tabulated_row(row_id: int, clip_id: str, r: Ratings) -> str:
    n = len(r.choices)
    means, means_norm = [], []
    for k in range(len(EMOTIONS_6)):
        sel = r.choices == k
        means.append(float(r.raw_levels[sel].mean()) if sel.any() else -1.0)
        means_norm.append(float(r.norm_levels[sel].mean()) if sel.any() else -1.0)
    vote = ":".join(LETTERS[e] for e in plurality(r.counts, EMOTIONS_6))
    cells = [
        _q(str(row_id)),
        *(str(int(c)) for c in r.counts),
        _q(clip_id),
        str(n),
        _r_num(r.counts.max() / n),
        _q(vote),
        _r_num(float(r.raw_levels.mean())),
        *(_r_num(m) for m in means),
        _r_num(float(np.median(r.raw_levels))),
        _r_num(float(r.norm_levels.mean())),
        *(_r_num(m) for m in means_norm),
        _r_num(float(np.median(r.norm_levels))),
    ]
    return ",".join(cells)


def tabulated_votes_csv(clips: list[CremaDClip]) -> str:
    header = [
        "",
        "A",
        "D",
        "F",
        "H",
        "N",
        "S",
        "fileName",
        "numResponses",
        "agreement",
        "emoVote",
        "meanEmoResp",
        *(f"mean{RESP_NAMES[e]}Resp" for e in EMOTIONS_6),
        "medianEmoResp",
        "meanEmoRespNorm",
        *(f"mean{RESP_NAMES[e]}RespNorm" for e in EMOTIONS_6),
        "medianEmoRespNorm",
    ]
    lines = [",".join(_q(h) for h in header)]
    for modality, qt in QUERY_TYPES.items():
        lines += [_tabulated_row(100000 * qt + c.clip_num, c.clip_id, c.ratings[modality]) for c in clips]
    return "\n".join(lines) + "\n"


def summary_table_csv(clips: list[CremaDClip]) -> str:
    header = ["", "FileName", "VoiceVote", "VoiceLevel", "FaceVote", "FaceLevel", "MultiModalVote", "MultiModalLevel"]
    lines = [",".join(_q(h) for h in header)]
    for c in clips:
        cells = [str(c.clip_num), c.clip_id]
        for modality in ("voice", "face", "av"):
            r = c.ratings[modality]
            top = plurality(r.counts, EMOTIONS_6)
            levels = [float(r.raw_levels[r.choices == EMOTIONS_6.index(e)].mean()) for e in top]
            cells += [":".join(LETTERS[e] for e in top), _r_levels(levels)]
        lines.append(",".join(_q(x) for x in cells))
    return "\n".join(lines) + "\n"


def _demographics_csv(actors: list[Actor]) -> str:
    lines = ['"ActorID","Age","Sex","Race","Ethnicity"']
    lines += [f"{a.actor_id},{a.age},{_q(a.identity.sex)},{_q(a.race)},{_q(a.ethnicity)}" for a in actors]
    return "\n".join(lines) + "\n"


def write_crema_d(root: Path, world: WorldPreset, seed: int, pool: Pool | None, progress: bool) -> dict:
    """Render (resuming: videos already on disk are kept) and write every file; returns counts."""
    preset = world.crema_d
    clips = plan_corpus(preset, world.raters, seed)
    rendered = render_missing([c.take.plan for c in clips], root, pool, "crema_d videos", progress)
    actors = list({c.actor.actor_id: c.actor for c in clips}.values())
    atomic_write_text(root / DEMOGRAPHICS_FILE, _demographics_csv(actors))
    atomic_write_text(
        root / "SentenceFilenames.csv",
        '"Stimulus_Number","Filename"\n' + "".join(f"{c.clip_num},{_q(c.clip_id)}\n" for c in clips),
    )
    atomic_write_text(root / VOTES_FILE, tabulated_votes_csv(clips))
    atomic_write_text(root / SUMMARY_FILE, summary_table_csv(clips))
    rows = [
        take_row(
            c.clip_id,
            c.actor.actor_id,
            c.emotion,
            c.intensity,
            c.take,
            EMOTIONS_6,
            c.expressed,
            sentence=c.sentence,
            level=c.level,
        )
        for c in clips
    ]
    write_truth(
        root,
        rows,
        {a.actor_id: a.as_dict() for a in actors},
        "one row per video; expressed_* is the expected share of face-only votes per emotion.",
    )
    return {
        "actors": len(actors),
        "clips": len(clips),
        "frames": int(sum(len(c.take.plan.aus) for c in clips)),
        "rendered_now": rendered,
    }
