"""Flags shared by several verbs and their translation into `RunOptions`; not a verb itself."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

from fedfer.config import (
    AGGREGATIONS,
    BACKENDS,
    BATCHNORM_CHOICES,
    CENTRAL_LABELS,
    CODECS,
    DEFAULT_BATCHNORM,
    DEFAULT_DP_CLIPPING_NORM,
    PAPER_EPOCHS,
    PAYLOADS,
    PRECISIONS,
    PROTOCOLS,
    TEACHERS,
    CrowdConfig,
    FeatureConfig,
    PersonalizeConfig,
    PrivacyConfig,
    RobustConfig,
    RunOptions,
    Task,
    TrainConfig,
)


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every verb that works on a world: where the data is, the task, the features."""
    parser.add_argument(
        "--world", default="small", help="synthetic preset (tiny, small, full) or a CREMA-D directory (default: small)"
    )
    parser.add_argument(
        "--affectnet", type=Path, help="AffectNet-layout directory for g() (synthetic worlds bring their own)"
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        default=Path("data"),
        help="where worlds, feature caches, splits and central models are kept (default: ./data)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the actor split, the training and the personalization (default: 0)"
    )
    parser.add_argument("--world-seed", type=int, default=0, help="seed of the rendered synthetic world (default: 0)")
    parser.add_argument(
        "--classes", type=int, choices=(4, 6), default=6, help="4-class (ANG HAP NEU SAD) or 6-class task (default: 6)"
    )
    parser.add_argument(
        "--labels",
        choices=("av", "face", "intended"),
        default="av",
        help="CREMA-D labels: audio-visual plurality (paper), face-only plurality, or intended emotion",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"face crop side in pixels, f()'s input (default: {FeatureConfig.image_size}, the paper's, for every "
        "world; 160, the offline backbone's native size, is about 2x faster on a CPU)",
    )
    parser.add_argument(
        "--weights", default="offline", help="f() weights: offline (default), imagenet, or a .pt/.pth path"
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
    """The world flags plus the federation's: `fedfer run`, `prepare` and `deploy`."""
    add_world_arguments(parser)
    p, defaults = PersonalizeConfig(), RunOptions()
    parser.add_argument(
        "--clients",
        type=int,
        help="number of subjects, the first N test actors; one client each: a simulated one (run, prepare) or a "
        "SuperNode (deploy) (default: every test actor)",
    )
    parser.add_argument(
        "--rounds", type=int, default=defaults.rounds, help=f"FedAvg rounds (default: {defaults.rounds})"
    )
    parser.add_argument(
        "--fraction-train",
        type=float,
        default=defaults.fraction_train,
        help=f"share of clients sampled per round (default: {defaults.fraction_train})",
    )
    parser.add_argument(
        "--max-per-class",
        "-P",
        type=int,
        default=p.max_per_class,
        help=f"P: pseudo-labelled videos kept per class (default: {p.max_per_class})",
    )
    parser.add_argument(
        "--p-threshold",
        type=float,
        default=p.p_threshold,
        help=f"minimum mean probability of a pseudo label (default: {p.p_threshold})",
    )
    parser.add_argument(
        "--local-epochs", type=int, default=p.epochs, help=f"local fine-tuning epochs (default: {p.epochs})"
    )
    parser.add_argument("--lr", type=float, default=p.lr, help=f"local learning rate (default: {p.lr})")
    parser.add_argument(
        "--batch-size", type=int, default=p.batch_size, help=f"local batch size (default: {p.batch_size})"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="results root; the run writes results/<name>/ (default: ./results)",
    )
    parser.add_argument("--name", help="run name (default: <world>-K<classes>-seed<seed>)")
    parser.add_argument(
        "--no-central-eval",
        dest="central_eval",
        action="store_false",
        help="the server does not score the central v() on the subjects' labelled clips after each round (a "
        "deployment whose SuperLink host holds no labels); the report then has no central-model tables",
    )
    add_communication_arguments(parser)
    parser.add_argument(
        "--no-client-eval",
        dest="client_eval",
        action="store_false",
        help="clients send no label-derived counts (cm-personal, cm-pseudo: their personalized v() and pseudo "
        "labels scored on their labelled clips); the report then has no personalized-model tables. The run "
        "config's default (a bare `flwr run .`) is off; fedfer's studies turn it on",
    )
    parser.add_argument(
        "--dp-noise",
        type=float,
        help="differential privacy: noise multiplier z of the server's Gaussian noise (std z × clip / sampled "
        "clients); turns on client-side clipping too (default: no differential privacy)",
    )
    parser.add_argument(
        "--dp-clip",
        type=float,
        help=f"differential privacy: L2 clipping norm of each client's v() update (default with --dp-noise: "
        f"{DEFAULT_DP_CLIPPING_NORM}); alone, it clips without noise",
    )
    parser.add_argument("--verbose", action="store_true", help="show Flower's full log")
    add_robust_arguments(parser)


# Numeric RobustConfig settings: flag, type, field, help (the default is appended).
ROBUST_FLAGS = (
    (
        "--max-update-norm",
        float,
        "max_update_norm",
        "refuse an update whose L2 distance from the global v() exceeds this; 0 = no bound (the default is about 4x "
        "the largest measured on clean runs)",
    ),
    ("--min-replies", int, "min_replies", "stop the run when a round has fewer accepted replies"),
    (
        "--round-timeout",
        float,
        "round_timeout",
        "seconds the server waits for a round's replies; later ones are recorded as failures",
    ),
    ("--trim-beta", float, "trim_beta", "--aggregation trimmed: share cut at each end"),
    ("--num-malicious", int, "num_malicious", "--aggregation krum/multikrum: hostile clients tolerated"),
)


def add_robust_arguments(parser: argparse.ArgumentParser) -> None:
    """What the server accepts and how it aggregates, resumption and injected faults (`RobustConfig`)."""
    r = RobustConfig()
    group = parser.add_argument_group("faults, update checks and robust aggregation")
    group.add_argument(
        "--aggregation",
        choices=AGGREGATIONS,
        default=r.aggregation,
        help="how accepted v() updates are combined, with Flower's strategies: FedAvg, FedMedian, FedTrimmedAvg, "
        f"Krum, MultiKrum (default: {r.aggregation})",
    )
    group.add_argument(
        "--no-validate-updates",
        dest="validate",
        action="store_false",
        help="average replies without checking shapes, dtypes, finiteness and the norm bound (comparisons only)",
    )
    for flag, kind, name, text in ROBUST_FLAGS:
        default = getattr(r, name)
        group.add_argument(flag, type=kind, dest=name, default=default, help=f"{text} (default: {default:g})")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue this run folder's federation from its last completed round's central v() (after a crash)",
    )
    group.add_argument(
        "--faults",
        default="",
        help="inject client faults for tests and studies: kind@partition,… with kind raise, hang, shape, dtype, "
        "nan, scale100, signflip, labelflip (default: none)",
    )


def add_communication_arguments(parser: argparse.ArgumentParser) -> None:
    """What travels each round and how it is written (run config keys payload, codec-up, codec-down)."""
    defaults = RunOptions()
    parser.add_argument(
        "--payload",
        choices=PAYLOADS,
        default=defaults.payload,
        help="what travels both ways: v (the method), g+v or f+g+v (g() and f() sent and averaged but not trained "
        f"by the clients: bytes only) (default: {defaults.payload})",
    )
    parser.add_argument("--codec", choices=CODECS, help="codec of both directions (sets --codec-up and --codec-down)")
    parser.add_argument(
        "--codec-up", choices=CODECS, help=f"how clients write their replies (default: {defaults.codec_up})"
    )
    parser.add_argument(
        "--codec-down", choices=CODECS, help=f"how the server writes its messages (default: {defaults.codec_down})"
    )


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed-002 variant as options of a run (`fedfer run`, `prepare`, `deploy`): the protocol and
    the central v()'s targets; with `--local-epochs 1 --lr 1e-5` it is the variant's local budget."""
    defaults = RunOptions()
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=defaults.protocol,
        help="transductive: each subject adapts on all its clips and is scored on them (the paper); held-out: its "
        f"clips are halved per label (seeded), it adapts on one half and is scored on the other (default: "
        f"{defaults.protocol})",
    )
    parser.add_argument(
        "--central-labels",
        choices=CENTRAL_LABELS,
        default=defaults.central_labels,
        help="what the central v() is trained on: hard plurality labels (the paper) or the clips' vote "
        "distributions with the KL divergence (needs per-clip votes: --labels av or face) (default: "
        f"{defaults.central_labels})",
    )


def privacy_from_args(a: dict) -> PrivacyConfig:
    """--dp-noise / --dp-clip as a PrivacyConfig (off when neither is given)."""
    noise, clip = a.get("dp_noise"), a.get("dp_clip")
    if noise is None and clip is None:
        return PrivacyConfig()
    return PrivacyConfig(
        noise_multiplier=noise or 0.0, clipping_norm=DEFAULT_DP_CLIPPING_NORM if clip is None else clip
    )


def add_simulation_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of Flower's simulation engine only (`fedfer run`, `prepare`); a deployment has no use for them."""
    defaults = RunOptions()
    parser.add_argument(
        "--client-cpus",
        type=int,
        default=defaults.client_cpus,
        help=f"CPUs Ray reserves per simulated client (default: {defaults.client_cpus})",
    )
    parser.add_argument(
        "--ray-address",
        help="simulate on a running Ray cluster, given its head's HOST:PORT (`ray start --head`; default: Ray on "
        "this machine)",
    )


def add_crowd_arguments(parser: argparse.ArgumentParser) -> None:
    """`fedfer run`'s scale workload: a crowd of synthetic subjects instead of the world's."""
    group = parser.add_argument_group("scale: a crowd of feature-level synthetic subjects")
    group.add_argument(
        "--crowd",
        type=int,
        default=0,
        metavar="N",
        help="federate a crowd of N feature-level synthetic subjects fitted to the run's test subjects instead of "
        "the subjects themselves: a systems workload for scale, with no report (default: 0, off)",
    )
    group.add_argument(
        "--subjects-per-node",
        type=int,
        default=50,
        help="crowd subjects each simulated node serves, replying with their weighted partial average (default: 50)",
    )
    group.add_argument("--crowd-seed", type=int, default=0, help="seed of the crowd's subjects (default: 0)")


def options_from_args(args: argparse.Namespace) -> RunOptions:
    a = vars(args)  # `fedfer train` / `evaluate` have only the world flags: the rest keep their defaults
    p, defaults = PersonalizeConfig(), RunOptions()
    task = Task(num_classes=args.classes, label_mode=args.labels, seed=args.seed)
    central = TrainConfig(batchnorm=args.batchnorm, restore_best=args.restore_best)
    return RunOptions(
        world=args.world,
        world_seed=args.world_seed,
        affectnet=args.affectnet,
        workspace=args.workspace,
        results=a.get("results", defaults.results),
        name=a.get("name", defaults.name),
        clients=a.get("clients", defaults.clients),
        rounds=a.get("rounds", defaults.rounds),
        fraction_train=a.get("fraction_train", defaults.fraction_train),
        task=task,
        personalize=PersonalizeConfig(
            max_per_class=a.get("max_per_class", p.max_per_class),
            p_threshold=a.get("p_threshold", p.p_threshold),
            epochs=a.get("local_epochs", p.epochs),
            lr=a.get("lr", p.lr),
            batch_size=a.get("batch_size", p.batch_size),
            seed=args.seed,
        ),
        features=FeatureConfig(
            image_size=args.image_size or FeatureConfig.image_size,
            weights=args.weights,
            backend=args.backend,
            precision=args.precision,
            device=args.device,
        ),
        ifer=replace(central, stage="ifer", epochs=args.ifer_epochs),
        vfer=replace(central, stage="vfer", epochs=args.vfer_epochs),
        teacher=args.teacher,
        central_eval=a.get("central_eval", defaults.central_eval),
        payload=a.get("payload", defaults.payload),
        codec_up=a.get("codec_up") or a.get("codec") or defaults.codec_up,
        codec_down=a.get("codec_down") or a.get("codec") or defaults.codec_down,
        client_eval=a.get("client_eval", defaults.client_eval),
        privacy=privacy_from_args(a),
        client_cpus=a.get("client_cpus", defaults.client_cpus),
        ray_address=a.get("ray_address", defaults.ray_address),
        crowd=CrowdConfig(
            size=a.get("crowd", 0), seed=a.get("crowd_seed", 0), subjects_per_node=a.get("subjects_per_node", 1)
        ),
        verbose=a.get("verbose", defaults.verbose),
        robust=robust_from_args(a),
        faults=a.get("faults", defaults.faults),
        resume=a.get("resume", defaults.resume),
        protocol=a.get("protocol", defaults.protocol),
        central_labels=a.get("central_labels", defaults.central_labels),
    )


def robust_from_args(a: dict) -> RobustConfig:
    """The `RobustConfig` the flags of `add_robust_arguments` describe (defaults for verbs without them)."""
    r = RobustConfig()
    return RobustConfig(**{f.name: a.get(f.name, getattr(r, f.name)) for f in fields(RobustConfig)})


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Which trained v() a verb uses (`fedfer predict`, `fedfer export`) and, for a bare checkpoint, its features."""
    parser.add_argument(
        "--run", type=Path, help="a run folder (results/<run>): its central v() after the last round by default"
    )
    parser.add_argument("--subject", help="with --run: this subject's personalized v() instead of the central one")
    parser.add_argument("--checkpoint", type=Path, help="any v() checkpoint (instead of --run)")
    parser.add_argument(
        "--image-size",
        type=int,
        help=f"with --checkpoint: face crop side its v() was trained with (default {FeatureConfig.image_size}; "
        "--run uses the run's)",
    )
    parser.add_argument("--weights", help="with --checkpoint: f() weights its v() was trained with (default offline)")
    parser.add_argument(
        "--frame-step", type=int, help="with --checkpoint: keep every n-th frame, as its v() was trained (default 1)"
    )


def model_choice_from_args(args: argparse.Namespace):
    """The `ModelChoice` the model flags name (imports the predict package, and so torch, only when called)."""
    from fedfer.predict.choice import choose_model

    return choose_model(
        run=args.run,
        subject=args.subject,
        checkpoint=args.checkpoint,
        ifer_checkpoint=getattr(args, "ifer_checkpoint", None),  # `fedfer export` only: predict needs no g()
        feature_overrides={"image_size": args.image_size, "weights": args.weights, "frame_step": args.frame_step},
    )
