"""What a run is told (`RunOptions`) and the flags that tell it, shared by the `fedfer` verbs and the
studies under simulations/.

The federation's flags are made from the run-config declarations (`fedfer.runconfig`): each is
spelled as its key (`--max-per-class`, `--num-server-rounds`), a few keep a shorter alias (`-P`,
`--rounds`, `--lr`), and a flag left out keeps the declared default. The world flags choose the
data, the task, the features and the central training.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from pathlib import Path

from fedfer.config import (
    BACKENDS,
    BATCHNORM_CHOICES,
    CODECS,
    DEFAULT_BATCHNORM,
    PAPER_EPOCHS,
    PRECISIONS,
    SYNTHETIC_PRESETS,
    TEACHERS,
    FeatureConfig,
    TrainConfig,
)
from fedfer.data.datasets import Task
from fedfer.runconfig import ADAPT, BEYOND, CROWD, DEFAULT_DP_CLIPPING_NORM, ROBUST, FederationConfig
from fedfer.settings import add_setting_flags, given_values


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
    task: Task = field(default_factory=Task)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    ifer: TrainConfig = field(default_factory=lambda: TrainConfig.for_stage("ifer"))
    vfer: TrainConfig = field(default_factory=lambda: TrainConfig.for_stage("vfer"))
    # The run config of the federation (rounds, personalization, codecs, robustness, privacy, crowd…);
    # `fedfer prepare` adds the run's paths, client count and teacher.
    federation: FederationConfig = field(default_factory=FederationConfig)
    client_cpus: int = 1  # CPUs Ray reserves per simulated client (simulation only)
    ray_address: str | None = None  # head of a running Ray cluster (`ray start --head`) to simulate on; None: local Ray
    resume: bool = False  # continue the run folder's federation from its last completed round
    verbose: bool = False  # echo Flower's full log

    @property
    def run_name(self) -> str:
        world = self.world if self.world in SYNTHETIC_PRESETS else Path(self.world).name
        world += f"-w{self.world_seed}" if self.world_seed else ""
        return self.name or f"{world}-K{self.task.num_classes}-seed{self.task.seed}"

    @property
    def run_dir(self) -> Path:
        return self.results / self.run_name


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every verb that works on a world: where the data is, the task, the features."""
    d = RunOptions()
    parser.add_argument(
        "--world",
        default=d.world,
        help=f"synthetic preset (tiny, small, full) or a CREMA-D directory (default: {d.world})",
    )
    parser.add_argument(
        "--affectnet", type=Path, help="AffectNet-layout directory for g() (synthetic worlds bring their own)"
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=d.workspace,
        help=f"where worlds, feature caches, splits and central models are kept (default: ./{d.workspace})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=d.task.seed,
        help=f"seed of the actor split, the training and the personalization (default: {d.task.seed})",
    )
    parser.add_argument(
        "--world-seed",
        type=int,
        default=d.world_seed,
        help=f"seed of the rendered synthetic world (default: {d.world_seed})",
    )
    parser.add_argument(
        "--classes",
        type=int,
        choices=(4, 6),
        default=d.task.num_classes,
        help=f"4-class (ANG HAP NEU SAD) or 6-class task (default: {d.task.num_classes})",
    )
    parser.add_argument(
        "--labels",
        choices=("av", "face", "intended"),
        default=d.task.label_mode,
        help="CREMA-D labels: audio-visual plurality (paper), face-only plurality, or intended emotion",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"face crop side in pixels, f()'s input (default: {d.features.image_size}, the paper's, for every "
        "world; 160, the offline backbone's native size, is about 2x faster on a CPU)",
    )
    parser.add_argument(
        "--weights", default=d.features.weights, help="f() weights: offline (default), imagenet, or a .pt/.pth path"
    )
    add_engine_arguments(parser)
    parser.add_argument(
        "--ifer-epochs", type=int, default=PAPER_EPOCHS["ifer"], help=f"epochs for g() (paper: {PAPER_EPOCHS['ifer']})"
    )
    parser.add_argument(
        "--vfer-epochs", type=int, default=PAPER_EPOCHS["vfer"], help=f"epochs for v() (paper: {PAPER_EPOCHS['vfer']})"
    )
    parser.add_argument(
        "--teacher",
        help=f"the pseudo-labeller: {', '.join(TEACHERS)}, or the path of a trained g() (default: affectnet when "
        "the world has AffectNet-layout stills, i.e. synthetic worlds or --affectnet; else crema-frames)",
    )
    parser.add_argument(
        "--ifer-checkpoint", dest="teacher", help="use this trained g() as the pseudo-labeller (= --teacher PATH)"
    )
    parser.add_argument(
        "--batchnorm",
        choices=BATCHNORM_CHOICES,
        default=DEFAULT_BATCHNORM,
        help="BatchNorm convention of g() and v(): keras (the paper's framework: momentum 0.99, eps 1e-3) or torch "
        f"(PyTorch's defaults: 0.9 in Keras' sense, eps 1e-5) (default: {DEFAULT_BATCHNORM})",
    )
    parser.add_argument(
        "--no-restore-best",
        dest="restore_best",
        action="store_false",
        help="end central training with the last epoch's weights (the paper) instead of the best dev-loss epoch's",
    )


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """How f() (and the heads) are computed: engine, arithmetic, device (`fedfer features` and the world verbs)."""
    d = FeatureConfig()
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=d.backend,
        help="f()'s engine: auto (ONNX Runtime on CPUs, PyTorch on a GPU), torch, onnxruntime, openvino (if "
        f"installed); float32 engines give the same cached features (default: {d.backend})",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help=f"f()'s arithmetic: fp32, or bf16 (PyTorch only; cached apart from fp32) (default: {d.precision})",
    )
    parser.add_argument(
        "--device",
        default=d.device,
        help=f"where f() and the heads run: auto (a CUDA GPU when present), cpu, cuda[:N] (default: {d.device})",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The world flags plus the federation's (its run-config settings): `fedfer run`, `prepare` and `deploy`."""
    add_world_arguments(parser)
    parser.add_argument(
        "--clients",
        type=int,
        help="number of subjects, the first N test actors; one client each: a simulated one (run, prepare) or a "
        "SuperNode (deploy) (default: every test actor)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RunOptions.results,
        help="results root; the run writes results/<name>/ (default: ./results)",
    )
    parser.add_argument("--name", help="run name (default: <world>-K<classes>-seed<seed>)")
    parser.add_argument("--verbose", action="store_true", help="show Flower's full log")
    add_setting_flags(parser, FederationConfig, ("", BEYOND, ADAPT, ROBUST))
    parser.add_argument("--codec", choices=CODECS, help="codec of both directions (sets --codec-up and --codec-down)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue this run folder's federation from its last completed round's central v() (after a crash)",
    )


def add_simulation_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of Flower's simulation engine only (`fedfer run`, `prepare`); a deployment has no use for them."""
    d = RunOptions()
    parser.add_argument(
        "--client-cpus",
        type=int,
        default=d.client_cpus,
        help=f"CPUs Ray reserves per simulated client (default: {d.client_cpus})",
    )
    parser.add_argument(
        "--ray-address",
        help="simulate on a running Ray cluster, given its head's HOST:PORT (`ray start --head`; default: Ray on "
        "this machine)",
    )


def add_crowd_arguments(parser: argparse.ArgumentParser) -> None:
    """`fedfer run`'s scale workload: a crowd of synthetic subjects instead of the world's."""
    add_setting_flags(parser, FederationConfig, (CROWD,))


def federation_from_args(args: argparse.Namespace) -> FederationConfig:
    """The run config the flags describe: the declared defaults, changed where a flag was given.

    `--codec` sets both directions unless one is given on its own; a noise multiplier without a
    clipping norm clips at DEFAULT_DP_CLIPPING_NORM; the personalization's seed is the run's --seed."""
    config = FederationConfig.from_run_config(given_values(FederationConfig, args))
    codec = getattr(args, "codec", None)
    if codec is not None:
        up = config.codec_up if getattr(args, "codec_up", None) else codec
        down = config.codec_down if getattr(args, "codec_down", None) else codec
        config = replace(config, codec_up=up, codec_down=down)
    if getattr(args, "dp_noise_multiplier", None) is not None and getattr(args, "dp_clipping_norm", None) is None:
        config = replace(config, privacy=replace(config.privacy, clipping_norm=DEFAULT_DP_CLIPPING_NORM))
    return replace(config, personalize=replace(config.personalize, seed=args.seed))


def options_from_args(args: argparse.Namespace) -> RunOptions:
    """The RunOptions of parsed flags; verbs with the world flags only (`train`, `evaluate`) keep the rest default."""
    a, d = vars(args), RunOptions()
    central = TrainConfig(batchnorm=args.batchnorm, restore_best=args.restore_best)
    return RunOptions(
        world=args.world,
        world_seed=args.world_seed,
        affectnet=args.affectnet,
        teacher=args.teacher,
        workspace=args.workspace,
        results=a.get("results", d.results),
        name=a.get("name", d.name),
        clients=a.get("clients", d.clients),
        task=Task(num_classes=args.classes, label_mode=args.labels, seed=args.seed),
        features=FeatureConfig(
            image_size=args.image_size or d.features.image_size,
            weights=args.weights,
            backend=args.backend,
            precision=args.precision,
            device=args.device,
        ),
        ifer=replace(central, stage="ifer", epochs=args.ifer_epochs),
        vfer=replace(central, stage="vfer", epochs=args.vfer_epochs),
        federation=federation_from_args(args),
        client_cpus=a.get("client_cpus", d.client_cpus),
        ray_address=a.get("ray_address", d.ray_address),
        resume=a.get("resume", d.resume),
        verbose=a.get("verbose", d.verbose),
    )
