"""Sizes of the synthetic world: `tiny` (tests), `small` (the quick-start), `full` (CREMA-D sized).

| preset | corpus                           | size                                                         |
|--------|----------------------------------|--------------------------------------------------------------|
| tiny   | CREMA-D-shaped                   | 8 actors x 12 clips = 96, 10 fps, 1,308 frames               |
| tiny   | AffectNet-shaped (train + valid) | 240 + 8 x 10                                                 |
| tiny   | MSP-IMPROV-shaped                | 12 x 4 = 48 clips, 10 fps, 802 frames                        |
| small  | CREMA-D-shaped                   | 91 actors x 24 clips = 2,184, 12 fps, 42,166 frames          |
| small  | AffectNet-shaped (train + valid) | 3,000 + 8 x 60                                               |
| small  | MSP-IMPROV-shaped                | 12 x 24 = 288 clips, 12 fps, 7,179 frames                    |
| full   | CREMA-D-shaped                   | 91 actors, 7,442 clips as CREMA-D, 29.97 fps, 619,025 frames |
| full   | AffectNet-shaped (train + valid) | 20,000 + 8 x 500                                             |
| full   | MSP-IMPROV-shaped                | 12 x 200 = 2,400 clips, 29.97 fps                            |

(frame counts for seed 0; clip length follows the sentence's syllables: ~1.4 s in tiny, ~1.6 s in
small, ~2.8 s in full.)

`small` keeps all 91 actors (so the standard 56/4/31 actor split holds) but uses 4 sentences
(IEO at level HI only) and short, low-frame-rate clips, because every frame later goes through face
detection and MobileNetV2 on two cores. `full` has CREMA-D's exact clip list: 12 sentences, IEO at
LO/MD/HI, NEU always XX, and the real corpus' 20 missing clips.

Render times measured with 2 workers on 2 cores shared with other jobs (seed 0): tiny 13 s for
all three corpora; small 122 s (CREMA-D 92 s, AffectNet 13 s, MSP-IMPROV 17 s; 10 minutes when
the machine was loaded four times over); full 44.5 min (CREMA-D 31.5 min, AffectNet 2.5 min,
MSP-IMPROV 10.6 min), while other jobs shared the cores for much of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fedfer.synth.actors import Population
from fedfer.synth.camera import Camera
from fedfer.synth.expression import SENTENCES
from fedfer.synth.raters import RaterModel

ALL_SENTENCES: tuple[str, ...] = tuple(SENTENCES)  # in the real corpus' order

# Clips the real CREMA-D lacks (3 actors miss one sentence, 2 actors one neutral take): 7,462 - 20 = 7,442.
CREMA_D_MISSING: tuple[str, ...] = tuple(
    [f"1008_WSI_{e}_XX" for e in ("NEU", "HAP", "SAD", "ANG", "FEA", "DIS")]
    + [f"1009_MTI_{e}_XX" for e in ("NEU", "HAP", "SAD", "ANG", "FEA", "DIS")]
    + [f"1019_ITH_{e}_XX" for e in ("NEU", "HAP", "SAD", "ANG", "FEA", "DIS")]
    + ["1002_TIE_NEU_XX", "1076_ITS_NEU_XX"]
)

# Head and shoulders in front of a plain studio backdrop, even light (CREMA-D's recording set-up).
CREMA_D_CAMERA = Camera(
    width=480,
    height=360,
    face_scale=(52.0, 64.0),
    centre_x=(0.44, 0.56),
    centre_y=(0.4, 0.48),
    backdrop="studio",
    light=(0.0, 0.3),
    warmth=(-0.3, 0.3),
    noise_sd=3.0,
)
# A dyadic improvisation filmed in a room: wider frame, smaller off-centre face, warm side light.
MSP_IMPROV_CAMERA = Camera(
    width=640,
    height=480,
    face_scale=(50.0, 62.0),
    centre_x=(0.35, 0.65),
    centre_y=(0.36, 0.46),
    backdrop="room",
    light=(0.3, 0.7),
    warmth=(0.2, 0.8),
    noise_sd=4.5,
    sway=0.09,
)
# Web photos: tight crops, any background, any colour cast, stronger contrast.
AFFECTNET_CAMERA = Camera(
    width=256,
    height=256,
    face_scale=(70.0, 88.0),
    centre_x=(0.44, 0.56),
    centre_y=(0.4, 0.5),
    backdrop="photo",
    light=(0.2, 0.9),
    warmth=(-0.8, 0.8),
    noise_sd=2.0,
)


# Version of what the generator draws for a preset and seed; bumped whenever that changes, so that a
# world on disk and the caches computed from it (named after it) never mix two generators.
WORLD_VERSION = 3

# ---------------------------------------------------------------- the calibrated world (version 3)
# Fitted by simulations/calibrate_world.py (fedfer.calibration) on world seeds 100-104 to published
# inputs only: CREMA-D's label statistics (the crowd, the actors' expressivity, levels and blends),
# the paper's Table 1 (the stills' annotator and pictured expressions) and the central v()'s Neutral
# in Table 2 and seed 002 (the share of emotional resting faces). Its report gives each value beside
# the uncalibrated one and every target beside its tolerance. Rounded to 3 significant digits.

# Portrayals of an emotion that blend another in (shown → {blended in: chance per portrayal}): the
# confusions CREMA-D's face crowd makes on at least 3% of an emotion's clips.
BLENDS: dict[str, dict[str, float]] = {
    "ANG": {"DIS": 0.123},
    "DIS": {"ANG": 0.175, "FEA": 0.292, "SAD": 0.6},
    "FEA": {"ANG": 0.157, "DIS": 0.0391, "SAD": 0.224},
    "SAD": {"DIS": 0.0218, "FEA": 0.112},
}
# The face, voice and audio-visual crowds of the video corpora.
CROWD = RaterModel(sharpness=10.5, neutral_threshold=0.234, bias_sd=1.04, av_face_weight=0.882)
# CREMA-D's actors: how strongly each emotion shows, how much actors differ in it (per emotion and
# overall), how many have an emotional-looking resting face.
CREMA_D_POPULATION = Population(
    expressivity_mean={"HAP": 1.88, "ANG": 0.685, "DIS": 2.5, "FEA": 0.658, "SAD": 0.228, "SUR": 0.95, "CON": 0.8},
    expressivity_sd=0.852,
    expressivity_common_sd=0.573,
    p_resting_look=0.2,
    blends=BLENDS,
)
# Web images and their one annotator: its own consistency, the crowd's threshold for Neutral.
STILLS_POPULATION = Population(
    expressivity_mean={"HAP": 0.986, "ANG": 0.252, "DIS": 0.2, "FEA": 1.05, "SAD": 0.252, "SUR": 0.95, "CON": 0.8},
    expressivity_sd=0.35,
    p_resting_look=0.612,
    p_glasses=0.2,
    blends=BLENDS,
)
STILLS_ANNOTATOR = RaterModel(sharpness=6.74, neutral_threshold=0.234, bias_sd=0.434)


@dataclass(frozen=True)
class CremaDPreset:
    """The CREMA-D-shaped corpus: which clips, how long, how filmed."""

    n_actors: int
    sentences: tuple[str, ...]
    ieo_levels: tuple[str, ...]  # IEO's levels (NEU is always XX); the other sentences are XX
    fps: float
    speech_rate: float  # syllables per second
    lead_s: float  # silence (and neutral face) before speech starts
    tail_s: float  # after speech ends
    missing: tuple[str, ...] = ()  # clip ids left out, as the real corpus lacks some
    # Intensity (0-1, a gain on the actor's prototype) of IEO's levels, ±10% per clip; XX
    # ("unspecified") is drawn per clip from `xx_intensity`.
    level_intensity: dict[str, float] = field(default_factory=lambda: {"LO": 0.284, "MD": 0.386, "HI": 0.766})
    xx_intensity: tuple[float, float] = (0.559, 0.8)
    camera: Camera = CREMA_D_CAMERA
    population: Population = CREMA_D_POPULATION
    fourcc: str = "FLV1"
    extension: str = ".flv"


@dataclass(frozen=True)
class AffectNetPreset:
    """The AffectNet-shaped still images: counts and the expression mix of the training list.

    train_mix: share of training rows per intended expression (AffectNet codes 0-10); the
    validation list holds `valid_per_class` rows for each of the 8 expressions, as the real one
    holds 500.
    """

    n_train: int
    valid_per_class: int
    train_mix: dict[int, float] = field(
        default_factory=lambda: {
            0: 0.22,
            1: 0.26,
            2: 0.1,
            3: 0.06,
            4: 0.08,
            5: 0.07,
            6: 0.12,
            7: 0.05,
            8: 0.02,
            9: 0.01,
            10: 0.01,
        }
    )
    camera: Camera = AFFECTNET_CAMERA
    population: Population = STILLS_POPULATION
    intensity: tuple[float, float] = (0.923, 1.0)  # the pictured expression's gain, drawn per image
    # One annotator per image, with a model of its own (web images are judged as they are, without
    # the actor's neutral face for reference).
    annotator: RaterModel = STILLS_ANNOTATOR
    images_per_folder: int = 500


@dataclass(frozen=True)
class MspImprovPreset:
    """The MSP-IMPROV-shaped corpus: 12 actors in 6 sessions, 4 classes, its own camera and a
    more reserved actor population (improvised speech is less exaggerated than acted CREMA-D)."""

    clips_per_actor: int
    fps: float
    speech_rate: float
    lead_s: float
    tail_s: float
    target_mix: dict[str, float] = field(default_factory=lambda: {"NEU": 0.35, "HAP": 0.3, "ANG": 0.17, "SAD": 0.18})
    intensity: tuple[float, float] = (0.6, 0.9)  # of a target improvisation; read 1.0×, others 0.8×
    camera: Camera = MSP_IMPROV_CAMERA
    population: Population = field(
        default_factory=lambda: Population(
            expressivity_mean={"HAP": 0.9, "ANG": 0.7, "SAD": 0.55, "FEA": 0.7, "DIS": 0.7},
            expressivity_sd=0.35,
            p_substitution=0.2,
            p_resting_look=0.6,
            resting_strength=(0.2, 0.45),
            skin_weights=(0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.05, 0.05),
            p_glasses=0.25,
            head_motion=(0.8, 1.8),
        )
    )
    fourcc: str = "XVID"
    extension: str = ".avi"


@dataclass(frozen=True)
class WorldPreset:
    name: str
    crema_d: CremaDPreset
    affectnet: AffectNetPreset
    msp_improv: MspImprovPreset
    raters: RaterModel = CROWD


PRESETS: dict[str, WorldPreset] = {
    "tiny": WorldPreset(
        "tiny",
        CremaDPreset(
            n_actors=8, sentences=("IEO", "DFA"), ieo_levels=("HI",), fps=10.0, speech_rate=6.0, lead_s=0.2, tail_s=0.15
        ),
        AffectNetPreset(n_train=240, valid_per_class=10),
        MspImprovPreset(clips_per_actor=4, fps=10.0, speech_rate=6.0, lead_s=0.2, tail_s=0.15),
    ),
    "small": WorldPreset(
        "small",
        CremaDPreset(
            n_actors=91,
            sentences=("IEO", "DFA", "TSI", "ITS"),
            ieo_levels=("HI",),
            fps=12.0,
            speech_rate=5.5,
            lead_s=0.3,
            tail_s=0.2,
        ),
        AffectNetPreset(n_train=15000, valid_per_class=100),
        MspImprovPreset(clips_per_actor=24, fps=12.0, speech_rate=5.0, lead_s=0.3, tail_s=0.2),
    ),
    "full": WorldPreset(
        "full",
        CremaDPreset(
            n_actors=91,
            sentences=ALL_SENTENCES,
            ieo_levels=("LO", "MD", "HI"),
            fps=29.97,
            speech_rate=4.0,
            lead_s=0.5,
            tail_s=0.4,
            missing=CREMA_D_MISSING,
        ),
        AffectNetPreset(n_train=88000, valid_per_class=500),
        MspImprovPreset(clips_per_actor=200, fps=29.97, speech_rate=4.0, lead_s=0.4, tail_s=0.4),
    ),
}


def get_preset(name: str) -> WorldPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown synthetic-world preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
