"""Who is on camera: identity (what the face looks like) and style (how it expresses emotion).

Style is the reason personalization exists. Each actor draws, from a population distribution:
* expressivity per emotion (a gain on the prototype: some actors barely show sadness, others
  exaggerate anger);
* a resting face: most actors look, at rest, like a weak version of one emotion (a "sad", "angry"
  or "smiling" resting face), as strong as a mild expression. Viewers of a clip discount it (they
  see the face before the emotion arrives); one frame cannot;
* idiosyncratic cue substitutions (e.g. sadness shown by lowered brows instead of lip-corner
  depression): viewers still read them as the actor means them, a model trained on others does not;
* head motion, articulation, blink rate.
A model trained on other actors is therefore miscalibrated for a new one, while that actor's own
clips (its neutral starts, its recurring cues) hold what is needed to adapt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from fedfer.synth.expression import AU_INDEX, PROTOTYPE_WEIGHTS, PROTOTYPES, au_vector

# Skin tones (BGR), light to dark; populations pick with their own weights.
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (190, 210, 240),
    (170, 195, 230),
    (150, 180, 220),
    (125, 160, 205),
    (100, 135, 180),
    (75, 105, 150),
    (55, 80, 120),
    (45, 60, 95),
)
HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (20, 20, 25),
    (30, 40, 60),
    (40, 60, 95),
    (70, 110, 160),
    (150, 150, 150),
    (60, 70, 110),
)
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "long", "bun")

# Cue substitutions: (emotion, AU taken away, AU given instead). The taken AU's prototype weight is
# moved to the given one, so the emotion still shows, through another channel.
SUBSTITUTIONS: tuple[tuple[str, str, str], ...] = (
    ("ANG", "AU4", "AU23"),  # anger by lip press rather than a lowered brow
    ("ANG", "AU7", "AU17"),
    ("HAP", "AU6", "AU26"),  # a non-Duchenne, open-mouthed smile
    ("SAD", "AU15", "AU4"),  # sadness in the brows, not the mouth
    ("SAD", "AU1", "AU17"),
    ("FEA", "AU20", "AU26"),  # fear by jaw drop rather than lip stretch
    ("FEA", "AU5", "AU4"),
    ("DIS", "AU9", "AU15"),  # disgust by lip depression rather than a nose wrinkle
    ("DIS", "AU10", "AU14"),
)

# AUs a resting face can carry besides its look, and whether they read as sad, angry, happy or disgusted.
RESTING_AUS: tuple[str, ...] = ("AU15", "AU4", "AU12", "AU1", "AU7", "AU17", "AU10", "AU23")
# Emotions a resting face can look like (a weak copy of the prototype, mouth closed).
RESTING_LOOKS: tuple[str, ...] = ("ANG", "SAD", "HAP", "DIS", "FEA")
# Emotions a portrayal can blend in (`Style.display`), in the fixed order the draws are made.
BLENDABLE: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "SAD")
# Seed-stream tag of a portrayal's blend draws, kept apart from the take's other draws.
BLEND_STREAM = 0xB1E4D


@dataclass(frozen=True)
class Identity:
    """Appearance, in face units (1 = half the face width), BGR colours."""

    sex: str  # "Male" | "Female"
    head_aspect: float  # crown-to-chin over width
    jaw_width: float  # chin narrowing, 0.5 (pointed) - 0.85 (square)
    skin: tuple[int, int, int]
    eye_y: float
    eye_dx: float
    eye_w: float
    eye_h: float
    iris: tuple[int, int, int]
    brow_gap: float  # brow above the eye
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float  # half width
    lip_upper: float
    lip_lower: float
    lip_colour: tuple[int, int, int]
    hair_style: str
    hair_colour: tuple[int, int, int]
    glasses: bool
    shirt: tuple[int, int, int]


@dataclass(frozen=True)
class Style:
    """How an actor expresses: gains, resting face, substitutions, motion (see module docstring)."""

    expressivity: dict[str, float]  # emotion → gain on its prototype
    resting: dict[str, float]  # AU → intensity present in every frame
    resting_look: str  # the emotion the resting face resembles ("" for a blank one)
    substitutions: tuple[tuple[str, str, str], ...]
    head_motion: float  # amplitude multiplier of head sway
    articulation: float  # jaw amplitude of speech
    blink_rate: float  # blinks per second
    vocal_expressivity: float  # how clearly the voice carries the intended emotion (voice raters)
    # emotion → {emotion blended in: probability per portrayal}; and the blended-in share's range
    blends: dict[str, dict[str, float]] = field(default_factory=dict)
    blend_share: tuple[float, float] = (0.3, 0.9)

    def cue_prototype(self, emotion: str) -> np.ndarray:
        """(N_AUS,) the cues this actor uses for the emotion (substitutions applied), at unit gain:
        what a viewer who reads the actor's performance as meant looks for."""
        proto = PROTOTYPES[emotion].copy()
        for emo, taken, given in self.substitutions:
            if emo == emotion:
                i, j = AU_INDEX[taken], AU_INDEX[given]
                proto[j] = max(proto[j], proto[i])
                proto[i] *= 0.15
        return proto

    def prototype(self, emotion: str) -> np.ndarray:
        """(N_AUS,) this actor's version of the emotion at full intensity: its cues scaled by its
        expressivity."""
        return self.cue_prototype(emotion) * self.expressivity.get(emotion, 1.0)

    def display(self, emotion: str, rng: np.random.Generator) -> np.ndarray:
        """(N_AUS,) one portrayal of `emotion` at unit intensity: the actor's prototype, into which,
        with the probabilities of `blends`, a share of another emotion's prototype is mixed (anger
        that shows some disgust). Every draw is made whatever the probabilities, so a world whose
        blend probabilities change keeps every other random choice (common random numbers)."""
        out = self.prototype(emotion)
        for other in BLENDABLE:
            u, share = rng.random(), rng.uniform(*self.blend_share)
            if other != emotion and u < self.blends.get(emotion, {}).get(other, 0.0):
                out = (1.0 - share) * out + share * self.prototype(other)
        return out

    def resting_vector(self) -> np.ndarray:
        return au_vector(self.resting)


@dataclass(frozen=True)
class Actor:
    actor_id: str
    identity: Identity
    style: Style
    age: int
    race: str
    ethnicity: str

    def as_dict(self) -> dict:
        """JSON-ready description for the truth sidecar (JSON writes the tuples as lists)."""
        return asdict(self)


@dataclass(frozen=True)
class Population:
    """The distribution actors are drawn from; corpora differ in it (a cross-corpus shift).

    expressivity_mean: per emotion, the population's mean gain (faces show sadness and fear less
    than happiness, as CREMA-D's face raters found); expressivity_sd: log-normal spread between
    actors; p_substitution: chance of each candidate substitution; p_resting_look: chance that
    the resting face looks like an emotion, at a fraction `resting_strength` of its prototype;
    p_resting_extra: chance of one extra resting-face AU, at most `resting_max`; articulation: the
    range of speakers' jaw amplitude when talking; expressivity_common_sd: the spread of an actor's
    overall expressiveness (some actors portray every emotion weakly); blends: the chance that a
    portrayal mixes in another emotion (`Style.display`).
    """

    expressivity_mean: dict[str, float] = field(
        default_factory=lambda: {
            "HAP": 1.0,
            "ANG": 0.58,
            "DIS": 0.56,
            "FEA": 0.52,
            "SAD": 0.34,
            "SUR": 0.95,
            "CON": 0.8,
        }
    )
    expressivity_sd: float = 0.4
    expressivity_common_sd: float = 0.0  # log-normal spread of an actor's overall expressiveness
    p_substitution: float = 0.3
    p_resting_look: float = 0.8
    resting_strength: tuple[float, float] = (0.3, 0.6)
    p_resting_extra: float = 0.4
    resting_max: float = 0.3
    skin_weights: tuple[float, ...] = (0.14, 0.16, 0.16, 0.14, 0.12, 0.12, 0.09, 0.07)
    p_glasses: float = 0.15
    head_motion: tuple[float, float] = (0.5, 1.5)
    articulation: tuple[float, float] = (0.6, 1.1)  # the speaker's jaw amplitude when talking
    blends: dict[str, dict[str, float]] = field(default_factory=dict)  # see `Style.blends`
    blend_share: tuple[float, float] = (0.3, 0.9)


def draw_identity(rng: np.random.Generator, sex: str, population: Population) -> Identity:
    """A face drawn within proportions a face detector accepts (eyes a third down, mouth below)."""
    male = sex == "Male"
    u = rng.uniform
    skin = SKIN_TONES[rng.choice(len(SKIN_TONES), p=np.asarray(population.skin_weights))]
    jitter = rng.integers(-8, 9, size=3)
    skin = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(skin, jitter))
    hair_p = [0.15, 0.6, 0.15, 0.1] if male else [0.02, 0.25, 0.5, 0.23]
    lip = tuple(int(c) for c in np.clip(np.array(skin) * np.array([0.6, 0.55, 0.85]) + [20, 15, 25], 0, 255))
    return Identity(
        sex=sex,
        head_aspect=u(1.22, 1.42),
        jaw_width=u(0.62, 0.85) if male else u(0.52, 0.75),
        skin=skin,  # type: ignore[arg-type]
        eye_y=u(-0.2, -0.1),
        eye_dx=u(0.36, 0.44),
        eye_w=u(0.26, 0.32),
        eye_h=u(0.1, 0.14),
        iris=tuple(int(c) for c in rng.choice([(40, 60, 90), (30, 40, 60), (120, 100, 60), (80, 120, 90)])),  # type: ignore[arg-type]
        brow_gap=u(0.2, 0.27),
        brow_thick=u(0.06, 0.09) if male else u(0.045, 0.07),
        nose_len=u(0.38, 0.5),
        nose_w=u(0.17, 0.24),
        mouth_y=u(0.58, 0.68),
        mouth_w=u(0.3, 0.38),
        lip_upper=u(0.05, 0.08),
        lip_lower=u(0.07, 0.1),
        lip_colour=lip,  # type: ignore[arg-type]
        hair_style=HAIR_STYLES[rng.choice(len(HAIR_STYLES), p=hair_p)],
        hair_colour=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        glasses=bool(rng.random() < population.p_glasses),
        shirt=tuple(int(c) for c in rng.integers(30, 220, size=3)),  # type: ignore[arg-type]
    )


def draw_style(rng: np.random.Generator, population: Population) -> Style:
    """An actor's style, drawn from `population` (see `Population`).

    Every random number is drawn whatever the population's shares and spreads, so two populations
    that differ in one knob give the same actors in every other respect (common random numbers:
    what lets a calibration measure each knob's effect)."""
    common = rng.normal(0.0, 1.0)
    expressivity = {
        emo: float(
            np.clip(
                mean * np.exp(population.expressivity_common_sd * common + population.expressivity_sd * rng.normal()),
                0.05,
                3.0,
            )
        )
        for emo, mean in population.expressivity_mean.items()
    }
    has_look, look_index, strength_u = rng.random(), int(rng.integers(len(RESTING_LOOKS))), rng.random()
    has_extra, extra_index, extra_u = rng.random(), int(rng.integers(len(RESTING_AUS))), rng.random()
    resting: dict[str, float] = {}
    look = ""
    if has_look < population.p_resting_look:
        look = RESTING_LOOKS[look_index]
        low, high = population.resting_strength
        strength = low + (high - low) * strength_u
        resting = {
            au: float(strength * w) for au, w in PROTOTYPE_WEIGHTS[look].items() if au != "AU26"
        }  # jaw closed at rest
    if has_extra < population.p_resting_extra:
        au = RESTING_AUS[extra_index]
        resting[au] = max(resting.get(au, 0.0), 0.1 + (population.resting_max - 0.1) * float(extra_u))
    draws = rng.random(len(SUBSTITUTIONS))
    substitutions: list[tuple[str, str, str]] = []
    for s, u in zip(SUBSTITUTIONS, draws):  # at most one per emotion, so the emotion keeps one clear channel
        if u < population.p_substitution and all(s[0] != t[0] for t in substitutions):
            substitutions.append(s)
    return Style(
        expressivity=expressivity,
        resting=resting,
        resting_look=look,
        substitutions=tuple(substitutions),
        head_motion=float(rng.uniform(*population.head_motion)),
        articulation=float(rng.uniform(*population.articulation)),
        blink_rate=float(rng.uniform(0.2, 0.5)),
        vocal_expressivity=float(np.clip(rng.normal(1.0, 0.3), 0.3, 1.7)),
        blends=population.blends,
        blend_share=population.blend_share,
    )


def draw_actor(rng: np.random.Generator, actor_id: str, sex: str, population: Population) -> Actor:
    """An actor with identity, style and demographics (ages 20-74, median near 33 as in CREMA-D)."""
    identity = draw_identity(rng, sex, population)
    style = draw_style(rng, population)
    age = int(np.clip(round(20 + rng.gamma(2.0, 8.0)), 20, 74))
    race = str(rng.choice(["Caucasian", "African American", "Asian", "Unknown"], p=[0.67, 0.24, 0.08, 0.01]))
    ethnicity = "Hispanic" if rng.random() < 0.11 else "Not Hispanic"
    return Actor(actor_id, identity, style, age, race, ethnicity)
