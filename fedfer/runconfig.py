"""The run config of a federation, `[tool.flwr.app.config]`: every key declared once, here.

Each key is the field that holds it, declared with `fedfer.settings.setting` (default, kebab-case
key, accepted values, help, `fedfer` flag). `FederationConfig` is what the ServerApp and ClientApp
read from Flower's run config, what `fedfer prepare` writes into a run folder's run_config.toml and
what the `fedfer run` / `prepare` / `deploy` flags build (`fedfer.runs.options`); pyproject.toml
repeats the defaults for a bare `flwr run .`, and tests/test_config.py keeps the two equal.

Deliberate defaults: `client-eval` on (a fedfer run is a study of labelled subjects; `--no-client-eval`
keeps even the counts home), `subjects-per-node` 50 (the runtime's per-message cost is paid per group).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedfer.config import (
    AGGREGATIONS,
    BATCHNORM_CHOICES,
    CENTRAL_LABELS,
    CODECS,
    COMBINE_RULES,
    DEFAULT_BATCHNORM,
    LABEL_SOURCES,
    LOCAL_HEADS,
    LOCAL_LABELS,
    PAYLOADS,
    PIXEL_TEACHER,
    PROTOCOLS,
    TEACHER_SHIFTS,
    THRESHOLD_RULES,
)
from fedfer.settings import Accepts, above, at_least, check_values, key_of, one_of, setting, values_of, with_values

ROBUST = "faults, update checks and robust aggregation"  # flag groups of `fedfer run --help`
CROWD = "scale: a crowd of feature-level synthetic subjects"
BEYOND = "pseudo-labelling beyond the paper (fedfer.model.personalize)"
ADAPT = "seed 003: federated contrastive adaptation of f() (fedfer.model.contrastive)"
ADAPT_F_PHASE = "adapt-f"
PHASES = ("personalize", ADAPT_F_PHASE)  # which federation one `flwr run` of the apps is


def _choice(choices: tuple[str, ...]) -> dict[str, Any]:
    return {"accepts": one_of(choices), "flag": True, "group": BEYOND}


def _count(low: int, group: str = BEYOND) -> dict[str, Any]:
    return {"accepts": at_least(low), "flag": True, "group": group}


DEFAULT_DP_CLIPPING_NORM = 1.0  # above the median L2 norm (0.82) of a client's v() update on clean `small` runs


@dataclass(frozen=True)
class PersonalizeConfig:
    """A client's unlabeled personalization (§ Personalization of the method)."""

    max_per_class: int = setting(
        20, "max-per-class", "P: pseudo-labelled videos kept per class", accepts=at_least(1), flag=True, aliases=("-P",)
    )
    p_threshold: float = setting(
        0.5,
        "p-threshold",
        "minimum mean probability of a pseudo label: videos below it are dropped",
        accepts=Accepts(lambda x: 0 <= x < 1, "a probability in [0, 1)"),
        flag=True,
    )
    epochs: int = setting(2, "local-epochs", "local fine-tuning epochs", accepts=at_least(0), flag=True)
    lr: float = setting(
        1e-3, "learning-rate", "local learning rate (Adam)", accepts=above(0), flag=True, aliases=("--lr",)
    )
    batch_size: int = setting(16, "batch-size", "local batch size", accepts=at_least(1), flag=True)
    seed: int = setting(0, "seed", "seed of local training, plus the client's partition id (fedfer: the run's --seed)")
    # Beyond the paper (each off by default; only v() still leaves the client, nothing new travels).
    # fedfer.model.personalize applies them in this order; docs/explanation/beyond-the-paper.md says what each costs.
    teacher_shift: str = setting(
        "none",
        "teacher-shift",
        "correct g() for the subject: its class prior (EM, or align to class-prior) or its average face (baseline)",
        **_choice(TEACHER_SHIFTS),
    )
    class_prior: str = setting(
        "", "class-prior", "K comma-separated shares for the prior shift; empty: uniform", group=BEYOND
    )
    combine: str = setting(
        "teacher",
        "combine",
        "the received v()'s second opinion: agree with g(), or their product",
        **_choice(COMBINE_RULES),
    )
    threshold_rule: str = setting(
        "fixed",
        "threshold-rule",
        "per-class thresholds (FlexMatch, FreeMatch); fixed: p-threshold",
        **_choice(THRESHOLD_RULES),
    )
    adabn: bool = setting(
        False, "adabn", "re-estimate v()'s BatchNorm statistics on the subject's clips", flag=True, group=BEYOND
    )
    entropy_epochs: int = setting(
        0, "entropy-epochs", "epochs of entropy minimisation on v()'s BatchNorm affine parameters", **_count(0)
    )
    labels_from: str = setting(
        "teacher", "labels-from", "pseudo labels, K own labels per class (subject), or both", **_choice(LABEL_SOURCES)
    )
    labelled_per_class: int = setting(
        5, "labelled-per-class", "K: clips per class the subject labels itself", **_count(1)
    )
    local_labels: str = setting(
        "hard", "local-labels", "hard pseudo labels, or g()'s clip distribution with KL (soft)", **_choice(LOCAL_LABELS)
    )
    local_head: str = setting(
        "linear", "local-head", "cross-entropy (linear) or few-shot prototype episodes", **_choice(LOCAL_HEADS)
    )


@dataclass(frozen=True)
class CrowdConfig:
    """A federation of feature-level synthetic subjects (`fedfer.synth.crowd`), a systems workload.

    With a `model`, node p serves crowd subjects [p·S, (p+1)·S) of `size` (S = `subjects_per_node`),
    each drawn from (`seed`, index) when the node is sampled, and replies with their weighted partial
    average and summed weight (FedAvg's result is that of one node per subject)."""

    model: str = setting("", "crowd-model", "crowd model .npz; empty: the run's own subjects, one per node")
    size: int = setting(
        0,
        "crowd-size",
        "federate a crowd of N feature-level synthetic subjects fitted to the run's test subjects instead of the "
        "subjects themselves: a systems workload for scale, with no report; 0: off",
        accepts=at_least(0),
        flag=True,
        aliases=("--crowd",),
        group=CROWD,
    )
    seed: int = setting(0, "crowd-seed", "seed of the crowd's subjects", flag=True, group=CROWD)
    subjects_per_node: int = setting(
        50, "subjects-per-node", "crowd subjects a node serves, replying with their partial average", **_count(1, CROWD)
    )

    @property
    def enabled(self) -> bool:
        return bool(self.model)


@dataclass(frozen=True)
class RobustConfig:
    """What the server accepts and how it combines it: faults and hostile updates must not reach v().

    Every reply is checked before aggregation (v()'s exact keys, shapes and dtypes, finite values, and the L2 norm
    of its change from the global v()); a refused reply is recorded with its reason and left out. The norm bound's
    default is about 4× the largest change measured on clean runs of the small world (1.28, the largest
    `update_norm` the server logged in their rounds.json)."""

    aggregation: str = setting(
        "fedavg",
        "aggregation",
        "how accepted v() updates are combined, with Flower's strategies: FedAvg, FedMedian, FedTrimmedAvg, Krum, "
        "MultiKrum",
        accepts=one_of(AGGREGATIONS),
        flag=True,
        group=ROBUST,
    )
    validate: bool = setting(
        True,
        "validate-updates",
        "check every reply's shapes, dtypes, finiteness and norm bound before aggregation; off: average what "
        "arrives (comparisons only)",
        flag=True,
        group=ROBUST,
    )
    max_update_norm: float = setting(
        5.0,
        "max-update-norm",
        "refuse an update whose L2 distance from the global v() exceeds this; 0 = no bound",
        accepts=at_least(0),
        flag=True,
        group=ROBUST,
    )
    min_replies: int = setting(
        1, "min-replies", "stop the run when a round has fewer accepted replies", **_count(1, ROBUST)
    )
    round_timeout: float = setting(
        3600.0,
        "round-timeout",
        "seconds the server waits for a round's replies (Flower's timeout); later ones are recorded as failures",
        accepts=above(0),
        flag=True,
        group=ROBUST,
    )
    trim_beta: float = setting(
        0.2,
        "trim-beta",
        "FedTrimmedAvg (aggregation trimmed): share cut at each end per coordinate",
        accepts=Accepts(lambda x: 0 <= x < 0.5, "a share in [0, 0.5)"),
        flag=True,
        group=ROBUST,
    )
    num_malicious: int = setting(
        1,
        "num-malicious",
        "Krum / MultiKrum: the number f of hostile clients they tolerate",
        accepts=at_least(0),
        flag=True,
        group=ROBUST,
    )


@dataclass(frozen=True)
class PrivacyConfig:
    """Central differential privacy of v()'s updates with Flower's wrappers: each client clips its update
    (new v() minus the received one, all arrays as one vector) to L2 norm `clipping_norm` before it leaves
    (`fixedclipping_mod`); the server averages the clipped updates uniformly and adds Gaussian noise of
    standard deviation noise_multiplier × clipping_norm / sampled clients
    (`DifferentialPrivacyClientSideFixedClipping`). Off while `clipping_norm` is 0. The personalized v()
    a subject keeps on its device is not covered: it never leaves, and it is neither clipped nor noised."""

    noise_multiplier: float = setting(
        0.0,
        "dp-noise-multiplier",
        "differential privacy: noise multiplier z of the server's Gaussian noise (std z × C / sampled clients); "
        "0 with a clipping norm clips without noise",
        accepts=at_least(0),
        flag=True,
        aliases=("--dp-noise",),
    )
    clipping_norm: float = setting(
        0.0,
        "dp-clipping-norm",
        "differential privacy: L2 clipping norm C of each client's v() update; 0 = no differential privacy (the "
        f"flag is {DEFAULT_DP_CLIPPING_NORM} when only a noise multiplier is given)",
        accepts=Accepts(lambda x: x >= 0, "a number >= 0 (0: no differential privacy)"),
        flag=True,
        aliases=("--dp-clip",),
    )

    @property
    def enabled(self) -> bool:
        return self.clipping_norm > 0


@dataclass(frozen=True)
class AdaptConfig:
    """Rounds of federated SimCLR on f()'s last blocks, then the paper's federation runs on the adapted f()
    (`fedfer.federation.adapt_f`); only the adapted blocks and the projection head travel. 0 rounds: frozen f()."""

    rounds: int = setting(0, "adapt-f-rounds", "FedAvg rounds adapting f() first; 0: f() frozen", **_count(0, ADAPT))
    blocks: int = setting(2, "adapt-f-blocks", "last MobileNetV2 blocks of f() trained (of 19)", **_count(1, ADAPT))
    epochs: int = setting(1, "adapt-f-epochs", "local contrastive epochs per adaptation round", **_count(1, ADAPT))
    frames_per_clip: int = setting(4, "adapt-f-frames", "face crops per clip, evenly spaced", **_count(1, ADAPT))


@dataclass(frozen=True)
class FederationConfig:
    """One federated run, as `[tool.flwr.app.config]` describes it (see the module docstring)."""

    num_server_rounds: int = setting(
        2, "num-server-rounds", "FedAvg rounds", accepts=at_least(1), flag=True, aliases=("--rounds",)
    )
    fraction_train: float = setting(
        1.0,
        "fraction-train",
        "share of clients sampled per round",
        accepts=Accepts(lambda x: 0 < x <= 1, "a number in (0, 1]"),
        flag=True,
    )
    num_clients: int = setting(
        2, "num-clients", "the server waits until this many SuperNodes are connected", accepts=at_least(1)
    )
    personalize: PersonalizeConfig = PersonalizeConfig()
    # Paths of the run's prepared state, filled in by `fedfer prepare` / `run` / `deploy`.
    run_dir: str = setting("", "run-dir", "where the server writes rounds, checkpoints and evaluations")
    central_checkpoint: str = setting("", "central-checkpoint", "the central v() the federation starts from")
    ifer_checkpoint: str = setting("", "ifer-checkpoint", "g(), the clients' pseudo-labeller (empty: pixel teacher)")
    teacher: str = setting("affectnet", "teacher", "which pseudo-labeller (TEACHERS, or 'checkpoint' for a given g())")
    subjects_file: str = setting("", "subjects-file", "JSON list of subject directories, in partition-id order")
    central_eval: bool = setting(
        True,
        "central-eval",
        "the server scores the central v() on the subjects' labelled clips after each round; off: a deployment "
        "whose SuperLink host holds no labels (the report then has no central-model tables)",
        flag=True,
    )
    batchnorm: str = setting(
        DEFAULT_BATCHNORM,
        "batchnorm",
        "v()'s BatchNorm convention; must match the central checkpoint",
        accepts=one_of(BATCHNORM_CHOICES),
    )
    payload: str = setting(
        "v",
        "payload",
        "what travels both ways: v (the method), g+v or f+g+v (g() and f() sent and averaged but not trained by "
        "the clients: bytes only)",
        accepts=one_of(PAYLOADS),
        flag=True,
    )
    codec_up: str = setting("float32", "codec-up", "how clients write their replies", accepts=one_of(CODECS), flag=True)
    codec_down: str = setting(
        "float32", "codec-down", "how the server writes its messages", accepts=one_of(CODECS), flag=True
    )
    pack_arrays: bool = setting(
        True,
        "pack-arrays",
        "each message carries v()'s tensors as one array (their codes concatenated: the same bytes), not one array "
        "per tensor: Flower stores and moves each array as an object of its own, one request each",
        flag=True,
    )
    crowd: CrowdConfig = CrowdConfig()
    robust: RobustConfig = RobustConfig()
    resume_round: int = setting(
        0,
        "resume-round",
        "start from the central v() checkpointed after this round (0: a new run)",
        accepts=at_least(0),
    )
    faults: str = setting(
        "",
        "faults",
        "inject client faults for tests and studies: kind@partition,… with kind raise, hang, shape, dtype, nan, "
        "scale100, signflip, labelflip (fedfer.federation.faults)",
        flag=True,
        group=ROBUST,
    )
    protocol: str = setting(
        "transductive",
        "protocol",
        "transductive: each subject adapts on all its clips and is scored on them (the paper); held-out: its clips "
        "are halved per label (seeded), it adapts on one half and is scored on the other (seed 002)",
        accepts=one_of(PROTOCOLS),
        flag=True,
    )
    central_labels: str = setting(
        "hard",
        "central-labels",
        "what the central v() is trained on: hard plurality labels (the paper) or the clips' vote distributions "
        "with the KL divergence (needs per-clip votes: --labels av or face)",
        accepts=one_of(CENTRAL_LABELS),
        flag=True,
    )
    client_eval: bool = setting(
        True,
        "client-eval",
        "clients send label-derived counts (cm-personal, cm-pseudo: their personalized v() and pseudo labels "
        "scored on their labelled clips); off, the report has no personalized-model tables",
        flag=True,
    )
    scores_in_train: bool = setting(
        True,
        "scores-in-train",
        "with client-eval: the counts ride in each train reply, scored right after personalizing, so a round is "
        "one exchange; off: a separate evaluate exchange per round sends the same counts",
        flag=True,
    )
    privacy: PrivacyConfig = PrivacyConfig()
    audit_dir: str = setting("", "audit-dir", "when set, every client writes a description of each reply it sends here")
    adapt: AdaptConfig = AdaptConfig()
    phase: str = setting("personalize", "phase", "the federation this run of the apps is", accepts=one_of(PHASES))

    def __post_init__(self) -> None:
        check_values(self, self.to_run_config())
        if self.privacy.enabled and self.codec_up == "int8":
            raise ValueError(
                f"{key_of(self, 'privacy', 'clipping_norm')} > 0 with {key_of(self, 'codec_up')} = 'int8': Flower's "
                "clipping would act on 8-bit codes; use float32 or float16 uplink codes with differential privacy"
            )
        if self.teacher == PIXEL_TEACHER and self.personalize.teacher_shift == "baseline":
            raise ValueError(
                f"{key_of(self, 'personalize', 'teacher_shift')} = 'baseline' re-normalises g()'s input features, and "
                f"the teacher {PIXEL_TEACHER!r} reads pixels: use none, em or prior with it"
            )

    @classmethod
    def from_run_config(cls, run_config: dict[str, Any]) -> FederationConfig:
        """Build from Flower's run config; every key must be known (a typo is an error, not a default)."""
        return with_values(cls(), run_config)

    def to_run_config(self) -> dict[str, Any]:
        """The run config (kebab-case keys) that `from_run_config` reads back into this object."""
        return values_of(self)

    def check_prepared(self) -> None:
        """Raise when the paths a federation starts from are unset or missing, naming the remedy."""
        names = ["run_dir", "central_checkpoint", "subjects_file"]
        if self.teacher != PIXEL_TEACHER:  # the pixel teacher is a model file of fedfer's cache, not a g()
            names.append("ifer_checkpoint")
        unset = [key_of(self, name) for name in names if not getattr(self, name)]
        missing = [  # the run folder itself is made by the server
            f"{key_of(self, name)}={getattr(self, name)}"
            for name in names[1:]
            if getattr(self, name) and not Path(getattr(self, name)).exists()
        ]
        if unset or missing:
            raise ValueError(
                "this run is not prepared "
                f"({'unset: ' + ', '.join(unset) if unset else 'missing: ' + ', '.join(missing)}): "
                "run `fedfer prepare` (same flags as `fedfer run`), then the `flwr run` line it prints"
            )
